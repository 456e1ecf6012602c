"""species_id's ``models evaluate --datathon``: the engine's real ONNX model scored on a datathon
frozen from real photos (scikit-image's), with the scorer participants get, and put on the same
leaderboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import yaml
from click.testing import CliRunner, Result

from core.cli import build_cli
from core.engine import Engine
from core.testing import draft, submit
from tests.plugins.analysis.test_datathon import analysis_entry, write_predictions
from tests.plugins.species_id.conftest import DEFAULT, bgr_photo, built_model, jpeg, link_model, service_entry  # noqa: F401
from tests.plugins.species_id.test_species_kit import variants

PHOTOS = {"chelsea": "Felis catus", "coffee": "espresso", "rocket": "missile"}


@pytest.fixture
def registry() -> str:
    return yaml.safe_dump({
        "services": {"species_id": service_entry({"models": [{"name": DEFAULT, "builtin": "efficientnet_lite0"}]}),
                     "analysis": analysis_entry()},
        "projects": [{"slug": "pets", "name": "Pets and things", "public": True, "auto_publish": True,
                      "timezone": "Europe/Madrid", "services": {"analysis": {}}}],
    }, sort_keys=False)


@pytest.fixture
def engine(make_engine: Callable[..., Engine], registry: str, built_model: Path) -> Engine:  # noqa: F811
    made = make_engine(registry)
    link_model(made.settings.data_dir, built_model)
    return made


@pytest.fixture
def datathon(client: Any, make_token: Callable[..., str], tmp_path: Path) -> Path:
    """Four contributors, each on their own day, each with a photo of a cat, a coffee and a rocket
    (different crops and flips); frozen with one contributor's rows in the test part."""
    for person in range(4):
        token = make_token("contributor", "pets", f"Person {person}")
        for name, label in PHOTOS.items():
            image = bgr_photo(name)
            photo = jpeg(variants(image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2))[person])
            submit(client, "pets", draft(observed_at=f"2026-06-0{person + 1}T10:00:00+02:00",
                                         fields={"category": label}), media={f"{name}.jpg": photo}, token=token)
    out = tmp_path / "things"
    made = CliRunner().invoke(build_cli(), ["datathon", "create", "things", "--project", "pets", "--label", "category",
                                            "--test-share", "0.25", "--seed", "4", "--out", str(out)])
    assert made.exit_code == 0, made.output
    return out


def test_the_engines_model_on_a_datathon_beside_a_participant(datathon: Path, tmp_path: Path) -> None:
    cli, runner = build_cli(), CliRunner()

    def run(*args: Any) -> Result:
        return runner.invoke(cli, list(map(str, args)), catch_exceptions=False)

    labels = dict(line.split(",") for line in (datathon / "organiser" / "test_labels.csv").read_text().splitlines()[1:])
    assert sorted(labels.values()) == sorted(PHOTOS.values())  # one contributor's three photos
    result = run("models", "evaluate", DEFAULT, "--datathon", datathon, "--out", tmp_path / "eval", "--submit")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["rows"] == 3 and report["classes_the_model_lacks"] == []
    assert report["top1"] >= 2 / 3 and report["top5"] == 1.0 and report["ece"] is not None
    assert "top-1" in result.stdout and "added to the leaderboard" in result.stdout
    # its predictions file is a valid submission: scored again as a participant's, the same numbers
    again = run("datathon", "score", tmp_path / "eval" / "predictions.csv", "--datathon", datathon,
                "--name", "copycat", "--json")
    assert again.exit_code == 0, again.output
    assert {k: json.loads(again.stdout)[k] for k in ("top1", "top5", "macro_f1", "ece")} == \
        {k: report[k] for k in ("top1", "top5", "macro_f1", "ece")}
    perfect = write_predictions(tmp_path / "p.csv", [[i, label] for i, label in labels.items()], ["id", "label"])
    assert run("datathon", "score", perfect, "--datathon", datathon, "--name", "team-a").exit_code == 0
    board = json.loads(run("datathon", "leaderboard", datathon, "--json").stdout)["entries"]
    assert {e["team"] for e in board} == {f"engine model {DEFAULT}", "copycat", "team-a"}
    assert board[0]["team"] == "team-a" or board[0]["top1"] == 1.0

    both = run("models", "evaluate", DEFAULT, "--datathon", datathon, "--dataset", tmp_path)
    assert both.exit_code == 2 and "either --dataset or --datathon" in both.stderr
    alone = run("models", "evaluate", DEFAULT, "--dataset", tmp_path / "eval", "--submit")
    assert alone.exit_code == 2 and "--submit" in alone.stderr
    not_one = run("models", "evaluate", DEFAULT, "--datathon", tmp_path / "eval")
    assert not_one.exit_code == 2 and "not a datathon folder" in not_one.stderr
