"""The console's exports: the filters chosen on screen are the ones applied, the export is
written in the background (``core.export_jobs`` through ``core.tasks``) with its progress, and
only the project's staff download it, for a day; bad input is a 4xx page that keeps the form."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from core.db.models import AuditEntry, utcnow
from core.db.models_console import ExportJob
from core.db.session import transaction
from core.engine import Engine
from core.export_jobs import recover_work
from core.moderation import moderate
from core.plugins import DEFAULT_PLUGINS
from core.testing import draft, submit
from tests.web.test_console_comments import csrf_of, member, signed_client

REGISTRY = """
services:
  recorder: {summary: records which observations it saw}
  birdsong: {summary: bird songs only}
projects:
  - slug: alpha
    name: Alpha
    timezone: Europe/Madrid
    services: {recorder: {}, birdsong: {}}
  - slug: beta
    name: Beta
    services: {}
"""
EXPORT_PLUGIN = "" if "core.export_jobs" in DEFAULT_PLUGINS else ",export_jobs=core.export_jobs"
"""Until the engine loads core.export_jobs as one of its own plugins, these tests load it."""


@pytest.fixture
def registry() -> str:
    return REGISTRY


@pytest.fixture
def plugins() -> str:
    return "recorder=tests.support.recorder,birdsong=tests.support.birdsong" + EXPORT_PLUGIN


@pytest.fixture
def staff(engine: Engine) -> dict[str, int]:
    """alpha's moderator and contributor, beta's admin; alpha has 3 generic and 2 bird-song
    observations published, and one bird song pending."""
    for i in range(3):
        moderate(engine, submit(engine, "alpha", draft(fields={"note": f"fox {i}"}))["id"], "publish", "test")
    for name in ("Turdus merula", "Erithacus rubecula"):
        song = submit(engine, "alpha", draft(kind="bird_song", fields={"species": name}))
        moderate(engine, song["id"], "publish", "test")
    submit(engine, "alpha", draft(kind="bird_song", fields={"species": "Parus major"}))
    return {"moderator": member(engine, "Mo Moderator", "mo@example.org", "alpha", "moderator"),
            "contributor": member(engine, "Carla", "carla@example.org", "alpha", "contributor"),
            "beta_admin": member(engine, "Bea", "bea@example.org", "beta", "admin")}


def _finished(engine: Engine, job_id: int) -> ExportJob:
    engine.dispatcher.flush(30)
    with transaction(engine.readers) as session:
        job = session.get(ExportJob, job_id)
        assert job is not None
        return job


def _start(console: Any, form: dict[str, str]) -> int:
    page = console.get("/console/projects/alpha/exports")
    answer = console.post("/console/projects/alpha/exports", data={"csrf": csrf_of(page.text), **form},
                          follow_redirects=False)
    assert answer.status_code == 303, answer.text
    return int(answer.headers["location"].rsplit("/", 1)[1])


def test_a_csv_filtered_by_kind_holds_only_that_kind(app: FastAPI, staff: dict[str, int]) -> None:
    engine = app.state.engine
    with signed_client(app, staff["moderator"]) as console:
        job_id = _start(console, {"format": "csv", "scope": "public", "kind": "bird_song"})
        job = _finished(engine, job_id)
        assert (job.status, job.rows_done, job.rows_total, job.filters) == ("done", 2, 2, {"kind": "bird_song"})
        page = console.get(f"/console/projects/alpha/exports/{job_id}")
        assert "2 of 2 rows" in page.text and f"/exports/{job_id}/download" in page.text
        progress = console.get(f"/console/projects/alpha/exports/{job_id}/progress").json()
        assert progress["status"] == "done" and progress["rows_done"] == 2
        download = console.get(f"/console/projects/alpha/exports/{job_id}/download")
        assert download.status_code == 200 and 'filename="alpha-observations.csv"' in download.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert {r["kind"] for r in rows} == {"bird_song"}
        assert sorted(r["field.species"] for r in rows) == ["Erithacus rubecula", "Turdus merula"]
        assert "contributor_id" not in rows[0]  # a public export names nobody


def test_a_staff_geojson_with_a_field_filter_and_dates_is_audited(app: FastAPI, staff: dict[str, int]) -> None:
    engine = app.state.engine
    with signed_client(app, staff["moderator"]) as console:
        job_id = _start(console, {"format": "geojson", "scope": "all", "kind": "bird_song",
                                  "fields": "field.species=Parus major", "observed_from": "2026-05-01",
                                  "observed_to": "2026-05-01"})
        assert _finished(engine, job_id).status == "done"
        collection = json.loads(console.get(f"/console/projects/alpha/exports/{job_id}/download").text)
        assert [f["properties"]["fields"]["species"] for f in collection["features"]] == ["Parus major"]
        assert collection["features"][0]["properties"]["status"] == "pending"
        next_day = _start(console, {"format": "geojson", "scope": "all", "observed_from": "2026-05-02"})
        assert _finished(engine, next_day).rows_done == 0
    with transaction(engine.readers) as session:
        entry = session.query(AuditEntry).filter(AuditEntry.action == "export").order_by(AuditEntry.id).first()
        assert entry is not None and entry.after["complete"] and entry.after["rows"] == 1
        assert entry.after["filters"]["field.species"] == "Parus major"


def test_bad_input_is_a_422_page_that_keeps_the_form(app: FastAPI, staff: dict[str, int]) -> None:
    with signed_client(app, staff["moderator"]) as console:
        page = console.get("/console/projects/alpha/exports")
        for form, said in (({"kind": "bird_song", "fields": "field.wingspan>=3"}, "wingspan"),
                           ({"observed_from": "May 1st"}, "not a date"),
                           ({"bbox": "1,2,3"}, "bbox"),
                           ({"fields": "species is fox"}, "field.NAME=VALUE"),
                           ({"format": "xlsx"}, "xlsx")):
            answer = console.post("/console/projects/alpha/exports", data={"csrf": csrf_of(page.text), **form})
            assert answer.status_code == 422 and said in answer.text, (form, answer.text[-2000:])
            for value in form.values():
                assert value.replace(">", "&gt;") in answer.text  # what was typed is still there
        dwca = console.post("/console/projects/alpha/exports", data={"csrf": csrf_of(page.text), "format": "dwca"})
        assert dwca.status_code == 409 and "dataset" in dwca.text
    with transaction(app.state.engine.readers) as session:
        assert session.query(ExportJob).count() == 0


def test_only_the_projects_staff_open_exports_and_files_expire(app: FastAPI, staff: dict[str, int]) -> None:
    engine = app.state.engine
    with signed_client(app, staff["moderator"]) as console:
        job_id = _start(console, {"format": "csv"})
        assert console.post("/console/projects/alpha/exports", data={"format": "csv"}).status_code == 403  # no CSRF
    _finished(engine, job_id)
    with signed_client(app, staff["contributor"]) as contributor:
        assert contributor.get("/console/projects/alpha/exports").status_code == 403
        assert contributor.get(f"/console/projects/alpha/exports/{job_id}/download").status_code == 403
    with signed_client(app, staff["beta_admin"]) as other:
        assert other.get(f"/console/projects/alpha/exports/{job_id}/download").status_code == 403
        assert other.get(f"/console/projects/beta/exports/{job_id}/download").status_code == 404
    with transaction(engine.sessions) as session:
        name = session.get(ExportJob, job_id).file_name
        session.execute(update(ExportJob).where(ExportJob.id == job_id).values(expires_at=utcnow() - timedelta(seconds=1)))
    with signed_client(app, staff["moderator"]) as console:
        assert console.get(f"/console/projects/alpha/exports/{job_id}/download").status_code == 410
    recover_work(engine)  # the workers' recovery loop removes what expired
    assert not (engine.settings.data_dir / "exports" / name).exists()
    with transaction(engine.readers) as session:
        assert session.get(ExportJob, job_id) is None


def test_an_export_whose_worker_died_is_started_again(app: FastAPI, staff: dict[str, int]) -> None:
    engine = app.state.engine
    with signed_client(app, staff["moderator"]) as console:
        job_id = _start(console, {"format": "csv"})
    _finished(engine, job_id)
    with transaction(engine.sessions) as session:  # as a worker that died half-way leaves it
        session.execute(update(ExportJob).where(ExportJob.id == job_id).values(
            status="running", rows_done=1, heartbeat_at=utcnow() - timedelta(minutes=5)))
    assert recover_work(engine) == 1
    job = _finished(engine, job_id)
    assert (job.status, job.rows_done, job.attempt) == ("done", 5, 2)


def test_an_export_with_a_purpose_counts_the_rows_it_selects(app: FastAPI, staff: dict[str, int]) -> None:
    from core import data_use

    engine = app.state.engine
    with signed_client(app, staff["moderator"]) as console:
        assert 'name="purpose"' in console.get("/console/projects/alpha/exports").text
        _finished(engine, _start(console, {"format": "csv", "scope": "public", "kind": "bird_song",
                                           "purpose": "education", "purpose_text": "a school's bird week"}))
        page = console.get("/console/projects/alpha/exports")
        odd = console.post("/console/projects/alpha/exports", data={"csrf": csrf_of(page.text), "format": "csv",
                                                                    "purpose": "spam"})
        assert odd.status_code == 422 and "unknown purpose" in odd.text
    (month,) = data_use.project_totals(engine, "alpha")
    assert (month["downloads"], month["observations"], month["purposes"]) == (1, 2, {"education": 1})
