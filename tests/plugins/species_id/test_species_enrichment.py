"""species_id through the engine: enrichment, quality flags and grade (inline dispatcher)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import pytest

from core import lifecycle, moderation
from core.db.session import transaction
from core.engine import Engine
from core.views import load_observation, observation_dict, observation_view
from plugins.species_id import runtime, service
from tests.conftest import draft
from tests.plugins.species_id.conftest import CAT_CLASSES, DEFAULT, species_registry


def submit(engine: Engine, project: str, *photos: tuple[str, bytes], **parts: Any) -> dict[str, Any]:
    uploads = [lifecycle.Upload(data, name, None) for name, data in photos]
    result = lifecycle.submit(engine, project, draft(**parts), uploads)
    with transaction(engine.sessions) as session:
        return observation_dict(load_observation(session, result.observation_id))


def flags(obs: dict[str, Any], plugin: str = "species_id") -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in obs["flags"] if f["plugin"] == plugin}


@pytest.fixture
def engine(species_engine: Callable[..., Engine]) -> Engine:
    return species_engine()


def test_the_cat_is_identified_and_stored_with_the_model(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "wildlife", ("cat.jpg", shots["cat"]))
    enrichment = obs["enrichments"]["species_id"]
    assert enrichment["status"] == "done", enrichment["error"]
    result = enrichment["result"]
    assert result["model"] == {"name": DEFAULT, "version": "57934424.r1"}
    assert result["outcome"] == "identified" and result["combination"] == "mean"
    best = result["best"]
    assert best["scientific_name"] == "Felis catus" and best["score"] > 0.8 and best["rank"] == "species"
    assert set(best["common_names"]) <= CAT_CLASSES and len(result["results"]) == 5
    scores = [r["score"] for r in result["results"]]
    assert scores == sorted(scores, reverse=True) and all(r["organism"] for r in result["results"])
    (image,) = result["images"]
    assert image["media"] == 0 and image["sha256"] == obs["media"][0]["sha256"]
    assert "filename" not in image  # the result is public with the observation: photos go by position
    assert image["results"][0]["scientific_name"] == "Felis catus"
    assert image["quality"]["min_side"] == 300 and len(image["quality"]["dhash"]) == 16
    assert result["dhashes"] == [image["quality"]["dhash"]]
    assert flags(obs) == {}
    assert obs["enrichments"]["recorder"]["status"] == "done"  # the other service is untouched


def test_a_machine_suggestion_never_makes_research_grade(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "wildlife", ("cat.jpg", shots["cat"]))
    assert obs["enrichments"]["species_id"]["result"]["best"]["score"] > 0.8
    assert obs["grade"] == "needs_id"
    assert "grade_observation" not in engine.host.hooks_of("species_id")


def test_coffee_is_no_organism(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "wildlife", ("coffee.jpg", shots["coffee"]))
    result = obs["enrichments"]["species_id"]["result"]
    assert result["outcome"] == "no_organism" and result["rejected"] and result["results"] == []
    assert result["message"] == "no organism recognised" and result["best_guess"]["name"] == "espresso"
    flag = flags(obs)["no_organism"]
    assert flag["severity"] == "info" and flag["value"]["label"] == "espresso" and flag["value"]["value"] > 0.5
    assert "low_confidence" not in flags(obs)


def test_no_reject_lists_things_too(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "anything", ("coffee.jpg", shots["coffee"]))
    result = obs["enrichments"]["species_id"]["result"]
    assert result["outcome"] == "identified" and not result["rejected"] and len(result["results"]) == 3
    assert result["best"]["common_names"] == ["espresso"] and result["best"]["organism"] is False


def test_low_confidence_against_the_projects_minimum(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "strict", ("cat.jpg", shots["cat"]))
    flag = flags(obs)["low_confidence"]
    best = obs["enrichments"]["species_id"]["result"]["best"]["score"]
    assert flag["value"] == {"value": best, "threshold": 0.99} and flag["severity"] == "warning"
    assert "0.99" in flag["message"] and "Felis catus" in flag["message"]


def test_photo_checks_carry_their_measures(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "wildlife", ("small.png", shots["cat_small"]), ("dark.jpg", shots["cat_dark"]),
                 ("blurred.jpg", shots["cat_blurred"]))
    found = flags(obs)
    small, dark, blurred = found["photo_too_small"], found["photo_too_dark"], found["photo_blurred"]
    assert small["value"] == {"media": 0, "value": 43, "threshold": 224} and small["message"].startswith("photo 1 ")
    assert not any(name in f["message"] for f in obs["flags"] for name in ("small.png", "dark.jpg", "blurred.jpg"))
    assert dark["value"]["media"] == 1 and dark["value"]["value"] < 20 and dark["value"]["threshold"] == 40
    assert blurred["value"]["media"] == 2 and blurred["value"]["value"] < 10 and blurred["value"]["threshold"] == 30
    assert [f["code"] for f in obs["flags"] if f["value"] and f["value"].get("media") == 1] == ["photo_too_dark"]
    assert "photo_too_bright" not in found
    assert obs["grade"] == "needs_id"  # warnings only


def test_a_near_duplicate_in_the_same_project_is_flagged(engine: Engine, shots: dict[str, bytes]) -> None:
    first = submit(engine, "wildlife", ("cat.jpg", shots["cat"]))
    moderation.moderate(engine, first["id"], "publish", actor="test")  # anyone may see it: it is named
    other_project = submit(engine, "strict", ("cat.jpg", shots["cat_again"]), fields={"n": 1})
    second = submit(engine, "wildlife", ("coffee.jpg", shots["coffee"]), ("again.jpg", shots["cat_again"]),
                    fields={"n": 2})
    assert "photo_duplicate" not in flags(first)
    assert "photo_duplicate" not in flags(other_project)  # another project's photos are not compared
    flag = flags(second)["photo_duplicate"]
    assert flag["value"]["media"] == 1 and flag["value"]["observation_id"] == first["id"]
    assert flag["value"]["other_media"] == 0 and flag["value"]["value"] <= 2 and flag["value"]["threshold"] == 5
    assert f"observation {first['id']}" in flag["message"]


def test_duplicates_can_be_switched_off(species_engine: Callable[..., Engine], shots: dict[str, bytes]) -> None:
    engine = species_engine(species_registry({"quiet": {"check_duplicates": False}}))
    submit(engine, "quiet", ("cat.jpg", shots["cat"]))
    again = submit(engine, "quiet", ("cat.jpg", shots["cat_again"]), fields={"n": 2})
    assert "photo_duplicate" not in flags(again)


def test_a_bad_photo_is_recorded_and_the_good_one_still_identified(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "wildlife", ("cat.jpg", shots["cat"]), ("broken.jpg", shots["damaged"]))
    enrichment = obs["enrichments"]["species_id"]
    assert enrichment["status"] == "done"
    result = enrichment["result"]
    good, bad = result["images"]
    assert good["results"][0]["scientific_name"] == "Felis catus"
    assert bad["error"]["code"] == "media_corrupt" and bad["error"]["message"].startswith("photo 2: ")
    assert "broken.jpg" not in str(result)
    assert result["best"]["scientific_name"] == "Felis catus"  # the bad photo does not count
    assert result["dhashes"][1] is None
    flag = flags(obs)["photo_unreadable"]
    assert flag["value"] == {"media": 1, "value": "media_corrupt"}


def test_an_observation_without_photos(engine: Engine) -> None:
    obs = submit(engine, "wildlife")
    result = obs["enrichments"]["species_id"]["result"]
    assert result["outcome"] == "no_photo" and result["results"] == [] and result["images"] == []
    assert flags(obs) == {}


def test_a_missing_stored_file_is_a_per_photo_error(engine: Engine, shots: dict[str, bytes]) -> None:
    obs = submit(engine, "wildlife", ("cat.jpg", shots["cat"]), ("coffee.jpg", shots["coffee"]))
    with transaction(engine.sessions) as session:
        view = observation_view(load_observation(session, obs["id"]), engine.media)
    gone = replace(view.media[1], path=Path(engine.settings.data_dir) / "nowhere")
    view = replace(view, media=(view.media[0], gone))
    result = service.enrich(runtime.Runtime.of(engine), view, engine.registry.project("wildlife").settings("species_id"))
    assert result["images"][1]["error"]["code"] == "media_missing"
    assert result["best"]["scientific_name"] == "Felis catus"


def test_a_broken_model_fails_only_this_enrichment(species_engine: Callable[..., Engine], tmp_path: Path,
                                                   shots: dict[str, bytes]) -> None:
    fake = tmp_path / "fake.onnx"
    fake.write_text("this is a text file, not a network")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    config = {"models": [{"name": DEFAULT, "builtin": "efficientnet_lite0"},
                         {"name": "fake", "onnx": str(fake), "labels": str(labels), "input_size": 224}]}
    engine = species_engine(species_registry({"wildlife": {"model": "fake"}, "other": {"model": "missing"}}, config))
    obs = submit(engine, "wildlife", ("cat.jpg", shots["cat"]))
    failed = obs["enrichments"]["species_id"]
    assert failed["status"] == "failed" and failed["attempts"] == engine.settings.enrich_max_attempts
    assert "model 'fake'" in failed["error"] and "not an ONNX model" in failed["error"]
    assert obs["enrichments"]["recorder"]["status"] == "done" and obs["grade"] == "needs_id"
    unknown = submit(engine, "other", ("cat.jpg", shots["cat"]))["enrichments"]["species_id"]
    assert unknown["status"] == "failed" and "unknown model 'missing'" in unknown["error"]


def test_the_observations_pixel_budget_bounds_the_enrichment(species_engine: Callable[..., Engine],
                                                             shots: dict[str, bytes]) -> None:
    from tests.plugins.species_id.conftest import DEFAULT as MODEL

    config = {"models": [{"name": MODEL, "builtin": "efficientnet_lite0"}], "max_request_pixels": 200_000}
    engine = species_engine(species_registry({"wildlife": {}}, config))
    obs = submit(engine, "wildlife", ("cat.jpg", shots["cat"]), ("coffee.jpg", shots["coffee"]))  # 135,300 pixels each
    result = obs["enrichments"]["species_id"]["result"]
    first, second = result["images"]
    assert first["results"][0]["scientific_name"] == "Felis catus"
    assert second["error"]["code"] == "pixel_budget" and "200,000 pixels" in second["error"]["message"]
    assert flags(obs)["photo_unreadable"]["value"] == {"media": 1, "value": "pixel_budget"}


def test_decoding_costs() -> None:
    import cv2
    import numpy as np

    from plugins.species_id.inference import decode_cost, jpeg_sequential

    image = np.full((1200, 1800, 3), 128, np.uint8)
    baseline = cv2.imencode(".jpg", image)[1].tobytes()
    progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    png = cv2.imencode(".png", image)[1].tobytes()
    assert jpeg_sequential(baseline) and not jpeg_sequential(progressive) and not jpeg_sequential(png)
    assert jpeg_sequential(baseline[:2] + b"\xff" + baseline[2:])  # a fill byte before a marker
    assert decode_cost(baseline, 1800, 1200, 256) == 900 * 600  # libjpeg decodes it at 1/2
    assert decode_cost(progressive, 1800, 1200, 256) == decode_cost(png, 1800, 1200, 256) == 1800 * 1200
