"""Feedback on services' results and on the services themselves (core.feedback), on a real
database with a real plugin (``suggester``, below) giving model-versioned results.

This module is also the ``suggester`` test plugin: its ``enrich_observation`` answers a
species suggestion naming its model, the version taken from the draft's ``model_version`` field.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import update

from core import hookimpl
from core.db.models_codesign import ResultFeedback
from core.db.session import transaction
from core.testing import draft, submit
from core.tokens import authenticate

REGISTRY = """
services:
  suggester:
    summary: suggests a species, naming its model
    settings: {type: object}
projects:
  - slug: alpha
    name: Alpha
    services: {suggester: {}}
  - slug: beta
    name: Beta
    public: false
    services: {}
"""
PLUGINS = "suggester=tests.test_feedback"


@hookimpl
def register_observation_types(register):  # noqa: ANN001, ANN201 (a pluggy hook)
    from core.types import ObservationType

    register(ObservationType("camera_event", "Camera event", {"type": "object"}))


@hookimpl
def enrich_observation(observation, project):  # noqa: ANN001, ANN201 (a pluggy hook)
    version = str(observation.fields.get("model_version", "1"))
    return {"model": {"name": "fox-net", "version": version}, "best": {"name": "Vulpes vulpes", "taxon_id": None}}


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    return PLUGINS


def principal(engine, role: str, project: str | None = "alpha"):  # noqa: ANN001, ANN201
    from core.tokens import create_token

    return authenticate(engine, create_token(engine, role, project).token)


def create_account_token(role: str, name: str, engine) -> int:  # noqa: ANN001
    """A new account with ``role`` in alpha, named ``name``: its id."""
    from core.tokens import create_token

    return create_token(engine, role, "alpha", name).account_id


def observation(engine, version: str = "1") -> int:  # noqa: ANN001
    return submit(engine, "alpha", draft(fields={"note": "fox", "model_version": version}))["id"]


def given_in(engine, month: str, ids: list[int]) -> None:  # noqa: ANN001
    """Move these verdicts to the 15th of ``month`` (as if given then)."""
    year, mon = (int(x) for x in month.split("-"))
    with transaction(engine.sessions) as session:
        session.execute(update(ResultFeedback).where(ResultFeedback.id.in_(ids))
                        .values(updated_at=datetime(year, mon, 15, 12, tzinfo=timezone.utc)))


def test_acceptance_rate_follows_planted_agreements(engine):
    from core.feedback import acceptance_by_model, acceptance_by_month, give_result_feedback

    people = [principal(engine, "moderator") for _ in range(4)]  # staff read unpublished observations
    planted = {"2026-10": (3, 1), "2026-11": (1, 3)}  # month: (agree, disagree)
    for month, (agree, disagree) in planted.items():
        version = "1" if month == "2026-10" else "2"
        obs_id = observation(engine, version)
        verdicts = ["agree"] * agree + ["disagree"] * disagree
        ids = [give_result_feedback(engine, person, obs_id, "suggester", verdict)["id"]
               for person, verdict in zip(people, verdicts)]
        given_in(engine, month, ids)
    # a person changing their mind replaces their verdict: still 4 verdicts in November
    last = give_result_feedback(engine, people[0], obs_id, "suggester", "disagree", reason="a dog, not a fox")
    given_in(engine, "2026-11", [last["id"]])

    months = acceptance_by_month(engine, "suggester")
    assert months == [{"month": "2026-10", "agree": 3, "disagree": 1, "rate": 0.75},
                      {"month": "2026-11", "agree": 0, "disagree": 4, "rate": 0.0}]
    assert acceptance_by_month(engine, "suggester", "beta") == []
    models = acceptance_by_model(engine, "suggester")
    assert [(m["version"], m["agree"], m["disagree"]) for m in models] == [("1", 3, 1), ("2", 0, 4)]
    assert {m["model"] for m in models} == {"fox-net"}


def test_corrections_become_a_labelled_data_set_species_id_reads(engine, photos, tmp_path):
    from core import consent, lifecycle
    from core.feedback import give_result_feedback
    from core.feedback_dataset import write_dataset
    from core.moderation import moderate
    from plugins.species_id.evaluate import load_dataset

    with transaction(engine.sessions) as session:
        from core.db.models import Taxon

        fox, dog = (Taxon(scientific_name=n, rank="species", rank_level=10, source="test", source_id=n)
                    for n in ("Vulpes vulpes", "Canis lupus"))
        session.add_all([fox, dog])
        session.flush()
        fox_id, dog_id = fox.id, dog.id
    recorder = create_account_token("contributor", "Rita Recorder", engine)
    consent.record(engine, recorder, engine.registry.project("alpha"), consent.ATTRIBUTION, consent.ATTRIBUTION_VERSION,
                   True)
    photo = lifecycle.Upload(photos["chelsea.jpg"], "chelsea.jpg", "image/jpeg")
    named = lifecycle.submit(engine, "alpha", draft(), [photo], contributor_id=recorder).observation_id
    anonymous = lifecycle.submit(engine, "alpha", draft(), [photo]).observation_id
    unpublished = lifecycle.submit(engine, "alpha", draft(), [photo]).observation_id
    for obs_id in (named, anonymous):
        moderate(engine, obs_id, "publish", actor="test")
    people = [principal(engine, "moderator") for _ in range(3)]
    for person, taxon_id in zip(people, (fox_id, fox_id, dog_id)):  # two say fox, one says dog
        give_result_feedback(engine, person, named, "suggester", "disagree", correction_taxon_id=taxon_id)
    give_result_feedback(engine, people[0], anonymous, "suggester", "disagree", correction_taxon_id=dog_id)
    give_result_feedback(engine, people[0], unpublished, "suggester", "disagree", correction_taxon_id=dog_id)
    give_result_feedback(engine, people[1], anonymous, "suggester", "agree")  # no label: not in the set

    report = write_dataset(engine, "suggester", tmp_path / "set")
    assert report["photos"] == 2 and report["skipped"] == 0
    rows = {int(r["observation_id"]): r for r in csv.DictReader((tmp_path / "set" / "labels.csv").open())}
    assert set(rows) == {named, anonymous}  # the unpublished observation stays out
    assert (rows[named]["label"], rows[named]["votes"], rows[named]["recorded_by"]) == ("Vulpes vulpes", "2",
                                                                                        "Rita Recorder")
    assert rows[anonymous]["recorded_by"] == "" and rows[anonymous]["licence"] == "CC-BY-4.0"
    samples = load_dataset(tmp_path / "set" / "labels.csv")  # what `models evaluate --dataset` reads
    assert sorted(s.label for s in samples) == ["Canis lupus", "Vulpes vulpes"]
    assert all(s.path.is_file() and s.path.read_bytes()[:2] == b"\xff\xd8" for s in samples)


def test_the_command_line_lists_exports_marks_and_refuses(engine, tmp_path):
    from click.testing import CliRunner

    from core.cli import build_cli
    from core.feedback import send_service_feedback

    sender = principal(engine, "contributor")
    item = send_service_feedback(engine, sender, "suggester", "comment", body="=1+1 works", project="alpha")
    runner = CliRunner()
    listed = runner.invoke(build_cli(), ["feedback", "list", "--service", "suggester"])
    assert listed.exit_code == 0, listed.output
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["role"], row["author"]) == (item["id"], "contributor", "contributor token")
    out = tmp_path / "session.csv"
    assert runner.invoke(build_cli(), ["feedback", "export", "--out", str(out)]).exit_code == 0
    text = out.read_text()
    assert "contributor token" not in text and "account_id" not in text and "'=1+1 works" in text
    marked = runner.invoke(build_cli(), ["feedback", "mark", str(item["id"]), "done", "--note", "shipped"])
    assert marked.exit_code == 0 and json.loads(marked.stdout)["state"] == "done"
    missing = runner.invoke(build_cli(), ["feedback", "mark", "99999", "done"])
    assert missing.exit_code == 2 and "no feedback 99999" in missing.output
    unknown = runner.invoke(build_cli(), ["feedback", "dataset", "--service", "nope", "--out", str(tmp_path / "x")])
    assert unknown.exit_code == 2 and "unknown service 'nope'" in unknown.output


def test_a_persons_feedback_is_in_their_data_and_stays_without_them_once_erased(engine):
    from core import gdpr
    from core.comments import OPERATOR
    from core.data_use import contributor_summary, record_download
    from core.feedback import give_result_feedback, list_result_feedback, list_service_feedback, \
        send_service_feedback

    person = principal(engine, "moderator")
    obs_id = observation(engine)
    give_result_feedback(engine, person, obs_id, "suggester", "disagree", reason="not a fox")
    send_service_feedback(engine, person, "suggester", "rating", rating=2, project="alpha")
    with transaction(engine.sessions) as session:  # their observation, downloaded once
        from core.db.models import Observation

        session.get(Observation, obs_id).contributor_id = person.account_id
    record_download(engine, "alpha", [obs_id], "research")
    assert contributor_summary(engine, person.account_id)["downloads"] == 1

    # before the erasure, their data download holds their feedback
    import io
    import json
    import zipfile

    held = io.BytesIO()
    gdpr.write_export(engine, person.account_id, held)
    with zipfile.ZipFile(held) as archive:
        theirs = json.loads(archive.read("feedback.json"))
    assert [(f["kind"], f["rating"]) for f in theirs["on_services"]] == [("rating", 2)]
    assert [(v["verdict"], v["reason"]) for v in theirs["on_results"]] == [("disagree", "not a fox")]

    gdpr.erase(engine, person.account_id, actor="test")
    [item] = list_service_feedback(engine, OPERATOR)["results"]
    assert (item["account_id"], item["author"], item["rating"]) == (None, None, 2)
    [verdict] = list_result_feedback(engine, OPERATOR, "alpha")["results"]
    assert verdict["account_id"] is None and verdict["reason"] == "not a fox"
    assert contributor_summary(engine, person.account_id)["all_time_downloads"] == 0


def test_an_observation_the_service_made_is_its_result(engine):
    """A video event is an observation the service made (a kind it registers): feedback on it is
    feedback on the service's result, with the model its fields name."""
    from core.feedback import acceptance_by_model, give_result_feedback

    made = submit(engine, "alpha", draft(kind="camera_event", fields={"model": {"name": "cam-net", "version": "7"}}))
    person = principal(engine, "moderator")
    said = give_result_feedback(engine, person, made["id"], "suggester", "disagree", correction_label="a badger")
    assert said["model"] == {"name": "cam-net", "version": "7"} and said["correction_label"] == "a badger"
    assert [(m["model"], m["version"], m["disagree"]) for m in acceptance_by_model(engine, "suggester")] == \
        [("cam-net", "7", 1)]
