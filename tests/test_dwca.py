"""Darwin Core Archives: read back with python-dwca-reader, as GBIF's tools read them.

A test plugin gives the project two kinds: ``sighting`` (typed fields, species among them) and
``camera`` (made by a machine: its schema says ``x-basis-of-record: MachineObservation``).
"""

from __future__ import annotations

import io
import os
import tracemalloc
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import sqlalchemy as sa
from dwca.read import DwCAReader

from core import hookimpl, lifecycle
from core.db.models import Account, AuditEntry, Consent, Enrichment, Observation, QualityFlag
from core.dwca import DatasetIncomplete, archive, write_archive
from core.engine import Engine
from core.export import EXPORT_BATCH, ExportOptions
from core.filters import parse_filters
from core.moderation import moderate
from core.tokens import create_token
from core.types import ObservationType
from tests.conftest import TEST_PLUGINS, draft

DWC = "http://rs.tdwg.org/dwc/terms/"
DC = "http://purl.org/dc/terms/"
GBIF_REQUIRED = [DWC + t for t in ("occurrenceID", "basisOfRecord", "scientificName", "eventDate")]
GBIF_RECOMMENDED = [DWC + t for t in ("occurrenceStatus", "decimalLatitude", "decimalLongitude", "geodeticDatum",
                                      "coordinateUncertaintyInMeters", "taxonRank", "kingdom", "recordedBy",
                                      "informationWithheld", "institutionCode", "datasetName")] + \
                   [DC + "license", DC + "rightsHolder"]


@hookimpl
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    register(ObservationType(name="sighting", title="Sighting", schema={
        "type": "object",
        "properties": {"species": {"type": "string"}, "count": {"type": "integer"}, "note": {"type": "string"}},
    }))
    register(ObservationType(name="camera", title="Camera trap", schema={
        "type": "object", "x-basis-of-record": "MachineObservation",
        "properties": {"label": {"type": "string"}},
    }))


PLUGINS = TEST_PLUGINS + ",birds=tests.test_dwca"
DATASET = """
    dataset:
      title: Birds of the park
      publisher: {name: Park Society, email: data@park.example, url: https://park.example}
      contacts: [{name: Ana Contact, email: ana@park.example}]
      creators: [{name: Bo Creator, organisation: Park Society}]
      citation: Park Society (2026) Birds of the park.
"""
REGISTRY = f"""
services:
  birds:
    summary: bird kinds (tests of core.dwca)
    settings: {{type: object}}
projects:
  - slug: birds
    name: Birds
    description: Birds seen in the park by its visitors.
    timezone: Europe/Madrid
    auto_publish: true
    location_precision: 3
    obscured_precision: 1
    licence: CC-BY-4.0
    licences: [CC-BY-4.0, CC0-1.0, CC-BY-NC-4.0, CC-BY-SA-4.0]
    services: {{birds: {{}}}}
{DATASET}
  - slug: harbour
    name: Harbour
    description: Boats seen from the harbour wall.
    timezone: America/St_Johns
    auto_publish: true
    services: {{}}
{DATASET}
  - slug: bare
    name: Bare
    services: {{}}
"""
EXACT = {"lat": 41.387654, "lon": 2.170123, "accuracy_m": 5}


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY, plugin_modules=PLUGINS, public_url="https://obs.example.org")


def person(engine: Engine, name: str, *, attribution: bool | None) -> int:
    """A contributor of ``birds`` named ``name``; ``attribution``: their answer to being named."""
    account_id = create_token(engine, "contributor", "birds", name).account_id
    with engine.sessions.begin() as session:
        session.get(Account, account_id).display_name = name
        if attribution is not None:
            # an older, opposite answer first: the newest one holds
            session.add(Consent(account_id=account_id, project="birds", choice="attribution", version="1",
                                agreed=not attribution, at=datetime.now(timezone.utc) - timedelta(days=1)))
            session.add(Consent(account_id=account_id, project="birds", choice="attribution", version="1",
                                agreed=attribution))
    return account_id


def submit(engine: Engine, who: int | None = None, photos: list[tuple[str, bytes, str]] = (), **parts: Any) -> int:
    uploads = [lifecycle.Upload(data, name, kind) for name, data, kind in photos]
    return lifecycle.submit(engine, "birds", draft(**parts), uploads, who).observation_id


def species_id_result(engine: Engine, obs_id: int, name: str, score: float, *, low_confidence: bool = False) -> None:
    """Store what the species_id service stores for an observation (it is not enabled here)."""
    best = {"scientific_name": name, "rank": "species", "kingdom": "Animalia", "score": score}
    with engine.sessions.begin() as session:
        session.add(Enrichment(observation_id=obs_id, plugin="species_id", status="done",
                               result={"outcome": "identified", "best": best, "results": [best],
                                       "model": {"name": "birds-test", "version": "1"}}))
        if low_confidence:
            session.add(QualityFlag(observation_id=obs_id, plugin="species_id", code="low_confidence",
                                    severity="warning", message="below the minimum"))


def read(path: Path) -> dict[str, Any]:
    """The archive's rows by observation id (the last part of occurrenceID), with its reader."""
    with DwCAReader(str(path)) as reader:
        rows = {row.id.rsplit("/", 1)[-1]: SimpleNamespace(data=row.data, extensions=list(row.extensions))
                for row in reader}
        return {"rows": rows, "core_terms": list(reader.descriptor.core.terms),
                "extensions": [d.type for d in reader.descriptor.extensions],
                "title": reader.metadata.find("dataset/title").text,
                "licence": reader.metadata.find("dataset/intellectualRights/para/ulink").get("url"),
                "contact": reader.metadata.find("dataset/contact/electronicMailAddress").text,
                "creator": reader.metadata.find("dataset/creator/individualName/surName").text,
                "orphans": reader.orphaned_extension_rows()}


def save(engine: Engine, tmp_path: Path, options: ExportOptions | None = None, name: str = "birds.zip") -> Path:
    path = tmp_path / name
    with path.open("wb") as out:
        write_archive(engine, engine.registry.project("birds"), out, options)
    return path


def test_the_archive_reads_back_with_every_gbif_term_media_and_no_private_place(engine, tmp_path, photos):
    named = person(engine, "Nora Named", attribution=True)
    shy = person(engine, "Sam Shy", attribution=False)
    silent = person(engine, "Uma Unasked", attribution=None)
    jpeg, png = photos["chelsea.jpg"], photos["camera.png"]
    by_field = submit(engine, named, [("a.jpg", jpeg, "image/jpeg"), ("b.png", png, "image/png")], kind="sighting",
                      location=EXACT, fields={"species": "Passer domesticus", "count": 3})
    suggested = submit(engine, shy, [("c.jpg", photos["coffee.jpg"], "image/jpeg")], kind="sighting",
                       location={"lat": 41.401234, "lon": 2.151234}, location_privacy="obscured", fields={"count": 1})
    species_id_result(engine, suggested, "Turdus merula", 0.91)
    unsure = submit(engine, silent, kind="sighting", fields={"note": "a brown bird"})
    species_id_result(engine, unsure, "Erithacus rubecula", 0.12, low_confidence=True)
    hidden = submit(engine, named, kind="sighting", location={"lat": 41.412345, "lon": 2.187654},
                    location_privacy="private", fields={"species": "Bubo bubo"})
    machine = submit(engine, None, kind="camera", fields={"label": "fox"})
    pending = submit(engine, named, kind="sighting", fields={"species": "Pica pica"})
    moderate(engine, pending, "unpublish", actor="test")

    path = save(engine, tmp_path)
    found = read(path)
    rows = found["rows"]

    assert set(rows) == {str(i) for i in (by_field, suggested, unsure, hidden, machine)}, "published only"
    for term in GBIF_REQUIRED + GBIF_RECOMMENDED:
        assert term in found["core_terms"], term
    assert found["extensions"] == ["http://rs.gbif.org/terms/1.0/Multimedia"]
    assert found["orphans"] == {"multimedia.txt": {}}, "every media row belongs to a core row"
    assert (found["title"], found["contact"], found["creator"]) == ("Birds of the park", "ana@park.example",
                                                                    "Bo Creator")

    row = rows[str(by_field)].data
    assert row[DWC + "occurrenceID"] == f"https://obs.example.org/api/v1/observations/{by_field}"
    assert row[DWC + "basisOfRecord"] == "HumanObservation" and row[DWC + "occurrenceStatus"] == "present"
    assert row[DWC + "eventDate"] == "2026-05-01T09:30:00+02:00", "local time, with its offset"
    assert row[DWC + "scientificName"] == "Passer domesticus"
    assert row[DWC + "recordedBy"] == "Nora Named" and row[DC + "rightsHolder"] == "Nora Named"
    assert row[DC + "license"] == "http://creativecommons.org/licenses/by/4.0/legalcode"
    assert (row[DWC + "decimalLatitude"], row[DWC + "decimalLongitude"]) == ("41.388", "2.17"), "the public grid"
    assert row[DWC + "geodeticDatum"] == "WGS84" and float(row[DWC + "coordinateUncertaintyInMeters"]) >= 111
    assert row[DWC + "informationWithheld"] and row[DWC + "institutionCode"] == "Park Society"
    media = [m.data for m in rows[str(by_field)].extensions]
    assert [m[DC + "format"] for m in media] == ["image/jpeg", "image/png"]
    assert all(m[DC + "type"] == "StillImage" and m[DC + "license"] == row[DC + "license"] for m in media)
    assert all(m[DC + "identifier"].startswith(row[DWC + "occurrenceID"] + "/media/") for m in media)
    assert media[0][DC + "created"] == row[DWC + "eventDate"] and media[0][DC + "rightsHolder"] == "Nora Named"
    assert len(rows[str(suggested)].extensions) == 1
    assert all(not rows[str(i)].extensions for i in (unsure, hidden, machine))

    row = rows[str(suggested)].data
    assert (row[DWC + "scientificName"], row[DWC + "taxonRank"], row[DWC + "kingdom"]) == (
        "Turdus merula", "species", "Animalia"), "species_id's accepted suggestion"
    assert "birds-test" in row[DWC + "identificationRemarks"]
    assert (row[DWC + "decimalLatitude"], row[DWC + "decimalLongitude"]) == ("41.4", "2.2"), "the obscured cell"
    assert "contributor" in row[DWC + "informationWithheld"] and row[DWC + "dataGeneralizations"]
    assert row[DWC + "recordedBy"] == "" and row[DC + "rightsHolder"] == "Park Society", "Sam declined"

    assert rows[str(unsure)].data[DWC + "scientificName"] == "", "a low-confidence suggestion is not a name"
    assert rows[str(unsure)].data[DWC + "recordedBy"] == "", "Uma was never asked"
    row = rows[str(hidden)].data
    assert row[DWC + "decimalLatitude"] == row[DWC + "decimalLongitude"] == ""
    assert "private" in row[DWC + "informationWithheld"]
    assert rows[str(machine)].data[DWC + "basisOfRecord"] == "MachineObservation"

    everything = b"".join(zipfile.ZipFile(path).read(name) for name in zipfile.ZipFile(path).namelist())
    for secret in (b"41.387654", b"2.170123", b"41.401234", b"2.151234", b"41.412", b"2.187", b"Sam Shy",
                   b"Uma Unasked", b"Pica pica", b"a.jpg"):
        assert secret not in everything, secret


def test_gbif_only_keeps_gbif_licences_and_eml_states_the_most_restrictive(engine, tmp_path):
    cc0 = submit(engine, kind="sighting", licence="CC0-1.0", fields={"species": "Parus major"})
    nc = submit(engine, kind="sighting", licence="CC-BY-NC-4.0", fields={"species": "Sitta europaea"})
    sa_ = submit(engine, kind="sighting", licence="CC-BY-SA-4.0", fields={"species": "Picus viridis"})
    everything = read(save(engine, tmp_path))
    assert set(everything["rows"]) == {str(cc0), str(nc), str(sa_)}
    assert everything["rows"][str(sa_)].data[DC + "license"].endswith("/by-sa/4.0/legalcode")
    gbif = read(save(engine, tmp_path, ExportOptions(gbif_only=True), "gbif.zip"))
    assert set(gbif["rows"]) == {str(cc0), str(nc)}
    assert gbif["licence"] == "http://creativecommons.org/licenses/by-nc/4.0/legalcode"


def test_filters_narrow_the_archive(engine, tmp_path):
    many = submit(engine, kind="sighting", fields={"species": "Columba livia", "count": 12})
    submit(engine, kind="sighting", fields={"species": "Columba palumbus", "count": 2})
    project = engine.registry.project("birds")
    params = {"field.count>": "3", "kind": "sighting"}
    options = ExportOptions(filters=parse_filters(engine, project, params), filter_params=params)
    assert set(read(save(engine, tmp_path, options))["rows"]) == {str(many)}


def test_a_staff_archive_has_every_status_public_places_and_is_audited(engine, tmp_path):
    pending = submit(engine, kind="sighting", location=EXACT, fields={"species": "Pica pica"})
    moderate(engine, pending, "unpublish", actor="test")
    assert read(save(engine, tmp_path))["rows"] == {}
    options = ExportOptions(scope="all", actor="account:7")
    rows = read(save(engine, tmp_path, options, "all.zip"))["rows"]
    assert set(rows) == {str(pending)}
    assert rows[str(pending)].data[DWC + "decimalLatitude"] == "41.388", "an archive is made to be published"
    with engine.readers() as session:
        (entry,) = session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "export")).all()
    assert (entry.actor, entry.project, entry.observation_id) == ("account:7", "birds", None)
    assert entry.after["format"] == "dwca" and entry.after["scope"] == "all"
    assert entry.after["rows"] == 1 and entry.after["complete"] is True


def test_an_incomplete_dataset_is_refused_naming_each_missing_key(engine):
    with pytest.raises(DatasetIncomplete) as refused:
        archive(engine, engine.registry.project("bare"))
    message = refused.value.message
    for key in ("projects[bare].description", "projects[bare].dataset.publisher", "projects[bare].dataset.contacts",
                "projects[bare].dataset.creators"):
        assert key in message
    assert refused.value.code == "dataset_incomplete" and refused.value.http_status == 409


def _bulk(engine: Engine, n: int) -> None:
    start = datetime(2026, 5, 1, 7, 30, tzinfo=timezone.utc)
    rows = [{"project": "birds", "content_hash": f"{i:064x}", "kind": "sighting", "observed_at": start,
             "lat": 41.0 + i / 1e5, "lon": 2.0, "accuracy_m": 5.0, "status": "published",
             "fields": {"species": "Passer " + os.urandom(60).hex(), "count": i}} for i in range(n)]
    with engine.db.begin() as conn:
        conn.execute(sa.insert(Observation.__table__), rows)


def _peak(engine: Engine) -> tuple[int, int]:
    """(chunks, peak bytes traced) while reading the archive to its end."""
    tracemalloc.start()
    try:
        chunks = sum(1 for _ in archive(engine, engine.registry.project("birds")))
        return chunks, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_archive_streams_in_bounded_memory(engine):
    _bulk(engine, 2 * EXPORT_BATCH)
    _, small = _peak(engine)
    _bulk(engine, 10 * EXPORT_BATCH)
    chunks, large = _peak(engine)
    assert chunks > 2, "a stream of chunks, not one blob"
    assert large < small * 1.5 + 512 * 1024, f"peak {large} bytes for 6x the rows of a {small}-byte peak"
    with zipfile.ZipFile(io.BytesIO(b"".join(archive(engine, engine.registry.project("birds"))))) as zf:
        assert zf.read("occurrence.txt").count(b"\n") == 12 * EXPORT_BATCH + 1


def test_event_dates_keep_the_offset_of_their_instant_across_a_clock_change(engine, tmp_path):
    """St John's clocks change at 02:00 local time, half past an hour in UTC: each eventDate is the
    local time with the offset in force at its instant, on either side of the change."""
    from zoneinfo import ZoneInfo

    instants = [datetime(2026, 3, 8, 5, 29, 59, 999_999, tzinfo=timezone.utc),  # 01:59:59.999999 NST
                datetime(2026, 3, 8, 5, 30, tzinfo=timezone.utc),  # 03:00 NDT
                datetime(2026, 3, 8, 5, 45, 30, tzinfo=timezone.utc),
                datetime(2026, 11, 1, 4, 29, tzinfo=timezone.utc),  # 01:59 NDT
                datetime(2026, 11, 1, 4, 31, tzinfo=timezone.utc),  # 01:01 NST, the second time
                datetime(2026, 7, 1, 12, 0, 0, 250_000, tzinfo=timezone.utc)]
    with engine.db.begin() as conn:
        conn.execute(sa.insert(Observation.__table__), [
            {"project": "harbour", "content_hash": f"{i:064x}", "kind": "generic", "observed_at": when, "lat": 47.5,
             "lon": -52.7, "accuracy_m": 5.0, "status": "published", "fields": {"species": "Larus marinus"}}
            for i, when in enumerate(instants)])
    path = tmp_path / "harbour.zip"
    with path.open("wb") as out:
        write_archive(engine, engine.registry.project("harbour"), out)
    with DwCAReader(str(path)) as reader:
        dates = [row.data[DWC + "eventDate"] for row in reader]
    assert dates == [when.astimezone(ZoneInfo("America/St_Johns")).isoformat() for when in instants]
    assert dates[:2] == ["2026-03-08T01:59:59.999999-03:30", "2026-03-08T03:00:00-02:30"]
    assert dates[3:5] == ["2026-11-01T01:59:00-02:30", "2026-11-01T01:01:00-03:30"]
