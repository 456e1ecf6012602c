"""The `observatory` command line, run as a user runs it: a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BASE_REGISTRY, draft

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run(settings_factory, tmp_path):
    settings_factory()  # writes the registry and sets OBSERVATORY_* for the child processes

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "core.cli", *args], input=stdin, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=120,
        )

    from core.db.models import Base
    from core.db.session import make_engine

    db = make_engine(os.environ["OBSERVATORY_DATABASE_URL"])
    with db.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    db.dispose()
    return run


def stored_observations() -> int:
    """How many observations the database holds (the `run` fixture empties it)."""
    from sqlalchemy import func, select

    from core.db.models import Observation
    from core.db.session import make_engine

    db = make_engine(os.environ["OBSERVATORY_DATABASE_URL"])
    try:
        with db.connect() as conn:
            return conn.execute(select(func.count()).select_from(Observation)).scalar_one()
    finally:
        db.dispose()


def write(tmp_path: Path, name: str, value) -> str:
    path = tmp_path / name
    path.write_bytes(value if isinstance(value, bytes) else json.dumps(value).encode())
    return str(path)


def test_submit_then_show(run, tmp_path, photos):
    d = write(tmp_path, "d.json", draft(client_id="cli-1"))
    photo = write(tmp_path, "cat.jpg", photos["chelsea.jpg"])
    out = run("submit", "beta", d, "--media", photo)
    assert out.returncode == 0, out.stderr
    stored = json.loads(out.stdout)
    assert stored["created"] is True and stored["media"][0]["content_type"] == "image/jpeg"
    again = json.loads(run("submit", "beta", d, "--media", photo).stdout)
    assert again["id"] == stored["id"] and again["created"] is False
    shown = run("show", str(stored["id"]))
    assert shown.returncode == 0
    body = json.loads(shown.stdout)
    assert body["fields"] == {"note": "a fox crossing the path"} and body["status"] == "pending"


def test_submit_queues_every_enrichment_on_the_broker_before_it_exits(run, tmp_path):
    import base64

    out = run("submit", "alpha", write(tmp_path, "d.json", draft()))
    assert out.returncode == 0, out.stderr
    stored = json.loads(out.stdout)
    assert {e["status"] for e in stored["enrichments"].values()} == {"pending"}
    queued = []
    for message in (Path(os.environ["OBSERVATORY_DATA_DIR"]) / "broker" / "in").glob("*.msg"):
        data = json.loads(message.read_text())
        args = json.loads(base64.b64decode(data["body"]))[0]
        batch = data["headers"]["task"] == "observatory.enrich_batch"
        queued += [enrichment_id for enrichment_id, _plugin in args[0]] if batch else [args[0]]
    assert len(queued) == len(set(queued)) == len(stored["enrichments"]) == 2, "each enrichment queued, once"


def test_submit_now_runs_enrichments_in_process(run, tmp_path):
    out = run("submit", "alpha", write(tmp_path, "d.json", draft()), "--now")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["enrichments"]["recorder"]["status"] == "done"
    assert body["grade"] == "needs_id"


@pytest.mark.parametrize(
    ("content", "project", "message"),
    [
        (b"{not json", "alpha", "not valid JSON"),
        (json.dumps(draft(location={"lat": 95, "lon": 0})).encode(), "alpha", "location.lat"),
        (json.dumps(draft()).encode(), "nowhere", "unknown project 'nowhere'"),
        (json.dumps({"location": {"lat": 1, "lon": 1}}).encode(), "alpha", "observed_at: Field required"),
    ],
)
def test_bad_input_exits_non_zero_with_a_clear_message_and_stores_nothing(run, tmp_path, content, project, message):
    out = run("submit", project, write(tmp_path, "bad.json", content))
    assert out.returncode == 2
    assert message in out.stderr
    assert stored_observations() == 0


def test_media_that_lies_about_its_type_is_refused(run, tmp_path, photos):
    fake = write(tmp_path, "photo.jpg", photos["camera.png"])
    out = run("submit", "alpha", write(tmp_path, "d.json", draft()), "--media", fake)
    assert out.returncode == 2
    assert "claims to be image/jpeg but its bytes are image/png" in out.stderr


def test_plugins_and_projects_as_json(run):
    plugins = {p["name"]: p for p in json.loads(run("plugins", "--json").stdout)}
    assert plugins["recorder"]["projects"] == ["alpha"]
    assert "enrich_observation" in plugins["recorder"]["hooks"]
    assert plugins["core.builtin.grading"]["default"] is True
    projects = {p["slug"]: p for p in json.loads(run("projects", "--json").stdout)}
    assert set(projects["alpha"]["services"]) == {"recorder", "flaky"}
    assert "generic" in projects["alpha"]["kinds"]


def test_a_broken_registry_stops_start_up_with_the_key(run, tmp_path):
    Path(os.environ["OBSERVATORY_REGISTRY_PATH"]).write_text(BASE_REGISTRY.replace("failures: 1", "failures: many"))
    out = run("projects")
    assert out.returncode == 3
    assert "projects[0].services.flaky: setting 'failures': 'many' is not of type 'integer'" in out.stderr


def test_tokens_are_printed_once_and_stored_hashed(run):
    out = run("tokens", "create", "--role", "moderator", "--project", "alpha", "--name", "Ana")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("obs_") and len(token) > 40
    listed = run("tokens", "list").stdout
    assert token not in listed and "Ana" in listed
    bad = run("tokens", "create", "--role", "moderator")
    assert bad.returncode == 2 and "name it with --project" in bad.stderr
    unbound = run("tokens", "create", "--role", "contributor")
    assert unbound.returncode == 2 and "a contributor token is for one project" in unbound.stderr


def test_moderate_from_the_command_line(run, tmp_path):
    stored = json.loads(run("submit", "beta", write(tmp_path, "d.json", draft())).stdout)
    out = run("moderate", str(stored["id"]), "publish")
    assert out.returncode == 0 and "pending -> published" in out.stdout
    again = run("moderate", str(stored["id"]), "publish")
    assert again.returncode == 1 and "it is published" in again.stderr


# -- export ---------------------------------------------------------------------------------------

EXPORT_REGISTRY = BASE_REGISTRY + """
  - slug: delta
    name: Delta
    description: Plants of the valley.
    auto_publish: true
    location_precision: 2
    services: {}
    dataset:
      publisher: {name: Valley Trust}
      contacts: [{name: Ana Contact, email: ana@valley.example}]
      creators: [{name: Bo Creator}]
"""


def test_export_csv_with_filters_and_for_excel(run, tmp_path, settings_factory):
    settings_factory(EXPORT_REGISTRY)
    for day, species in (("01", "Quercus ilex"), ("03", "Pinus pinea")):
        d = write(tmp_path, f"{day}.json", draft(observed_at=f"2026-05-{day}T09:30:00+02:00",
                                                 fields={"species": species}, location={"lat": 41.387654, "lon": 2.17}))
        assert run("submit", "delta", d).returncode == 0
    out = run("export", "delta", "--filter", "since=2026-05-02T00:00:00Z", "--excel", "--out", "delta.csv")
    assert out.returncode == 0, out.stderr
    data = (tmp_path / "delta.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfid;kind;") and b"Pinus pinea" in data and b"Quercus" not in data
    assert b"41.387654" not in data and b";41.39;" in data
    bad = run("export", "delta", "--filter", "colour=red")
    assert bad.returncode == 2 and "unknown filter 'colour'" in bad.stderr
    geo = run("export", "delta", "--format", "geojson", "--all")
    assert geo.returncode == 0 and json.loads(geo.stdout)["features"][0]["properties"]["contributor_id"] is None


def test_export_a_darwin_core_archive_and_the_audit_of_a_full_export(run, tmp_path, settings_factory):
    from dwca.read import DwCAReader

    settings_factory(EXPORT_REGISTRY)
    d = write(tmp_path, "d.json", draft(fields={"scientific_name": "Quercus ilex"}))
    assert run("submit", "delta", d).returncode == 0
    made = run("export", "delta", "--format", "dwca", "--out", "delta.zip")
    assert made.returncode == 0, made.stderr
    with DwCAReader(str(tmp_path / "delta.zip")) as reader:
        (row,) = list(reader)
        assert row.data["http://rs.tdwg.org/dwc/terms/scientificName"] == "Quercus ilex"
    incomplete = run("export", "alpha", "--format", "dwca", "--out", "alpha.zip")
    assert incomplete.returncode == 2
    assert "projects[alpha].description" in incomplete.stderr and "projects[alpha].dataset.creators" in incomplete.stderr
    assert run("export", "delta", "--all", "--gbif-only", "--out", "all.csv").returncode == 0
    audited = run("export", "delta", "--all", "--format", "dwca", "--out", "all.zip")
    assert audited.returncode == 0

    from core.db.models import AuditEntry
    from core.db.session import make_engine
    import sqlalchemy as sa

    db = make_engine(os.environ["OBSERVATORY_DATABASE_URL"])
    with db.connect() as conn:
        entries = conn.execute(sa.select(AuditEntry.actor, AuditEntry.after).where(AuditEntry.action == "export")
                               .order_by(AuditEntry.id)).all()
    db.dispose()
    assert [(actor, after["format"], after["rows"], after["complete"]) for actor, after in entries] == [
        ("cli", "csv", 1, True), ("cli", "dwca", 1, True)]


@pytest.mark.slow  # over 30 s: once in CI (the PostgreSQL pass)
def test_moderate_many_publishes_what_the_filter_selects_and_no_more(run, tmp_path):
    for i, note in enumerate(["keep", "keep", "spam"]):
        assert run("submit", "beta", write(tmp_path, f"m{i}.json", draft(client_id=f"mm-{i}", fields={"note": note}))
                   ).returncode == 0
    refused = run("moderate-many", "beta", "publish")
    assert refused.returncode == 2 and "--filter" in refused.stderr, "no filter: nothing is touched by accident"
    dry = run("moderate-many", "beta", "trash", "--filter", "status=pending", "--dry-run")
    assert dry.returncode == 0 and "3 selected; 3 would change" in dry.stdout
    done = run("moderate-many", "beta", "publish", "--filter", "status=pending", "--reason", "vetted")
    assert done.returncode == 0 and "3 selected; 3 changed" in done.stdout, done.stdout + done.stderr
    again = run("moderate-many", "beta", "publish", "--filter", "status=published")
    assert "3 selected; 0 changed; 3 left alone" in again.stdout
    statuses = {json.loads(run("show", str(i)).stdout)["status"] for i in
                (json.loads(run("submit", "beta", write(tmp_path, f"m{k}.json",
                                                        draft(client_id=f"mm-{k}", fields={"note": n}))).stdout)["id"]
                 for k, n in enumerate(["keep", "keep", "spam"]))}
    assert statuses == {"published"}
