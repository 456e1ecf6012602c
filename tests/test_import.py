"""observatory import: CSV with a mapping, iNaturalist export, GeoJSON and Darwin Core Archive
samples (tests/data/import), into a real database, as a user runs it."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import stat
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db.models import Account, Base, Consent, Membership, Observation
from core.db.session import transaction
from core.importing import SourceError, detect_format, import_file, write_report
from core.views import load_observation, observation_dict

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "import"
REGISTRY = """
services:
  recorder:
    summary: records which observations it saw
    settings: {type: object}
projects:
  - slug: old
    name: An old project moving in
    timezone: Europe/Madrid
    licence: CC-BY-4.0
    licences: [CC0-1.0, CC-BY-NC-4.0]
    licence_version: "2"
    services: {recorder: {}}
"""


@pytest.fixture
def engine(make_engine):
    return make_engine(REGISTRY)


@pytest.fixture
def media(tmp_path, photos) -> Path:
    folder = tmp_path / "old-photos"
    folder.mkdir()
    (folder / "hedgehog.jpg").write_bytes(photos["chelsea.jpg"])
    return folder


def observations(engine) -> dict[str, dict]:
    """Stored observations by client id, as `observatory show` prints them, with source_contributor."""
    with transaction(engine.sessions) as s:
        out = {}
        for obs in s.scalars(select(Observation)):
            out[obs.client_id] = {**observation_dict(load_observation(s, obs.id)),
                                  "source_contributor": obs.source_contributor, "contributor_id": obs.contributor_id}
        return out


def everything_stored(engine) -> str:
    """Every row of every table, as text: what a person's name must not be found in."""
    with engine.db.connect() as conn:
        return "\n".join(repr(conn.execute(select(table)).all()) for table in Base.metadata.sorted_tables)


def old_csv(engine, media, **options):
    return import_file(engine, "old", DATA / "old_project.csv", mapping=DATA / "old_project.mapping.yaml",
                       media_dir=media, **options)


# -- CSV with a mapping ----------------------------------------------------------------------


def test_a_dry_run_checks_every_row_and_stores_nothing(engine, media, tmp_path):
    summary = old_csv(engine, media, dry_run=True)
    assert (summary.rows, summary.stored, summary.refused) == (6, 3, 3)
    assert observations(engine) == {}
    with engine.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account)).scalar_one() == 0

    report = tmp_path / "report.csv"
    write_report(summary, report)
    lines = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [(r["row"], r["field"], r["column"], r["code"]) for r in lines] == [
        ("4", "observed_at", "Date", "unreadable_time"),
        ("5", "fields.count", "Count", "not_integer"),
        ("6", "media.0", "Photo", "media_not_found"),
    ]
    assert "'32/04/2019'" in lines[0]["problem"] and lines[0]["source_id"] == "OP-3"
    assert "blackbird.jpg" in lines[2]["problem"]


def test_csv_rows_are_stored_with_their_media_fields_and_enrichments(engine, media):
    summary = old_csv(engine, media)
    assert (summary.stored, summary.duplicates, summary.refused) == (3, 0, 3)
    stored = observations(engine)
    assert sorted(stored) == ["old-project:OP-1", "old-project:OP-2", "old-project:OP-6"]
    first = stored["old-project:OP-1"]
    assert first["observed_at"] == "2019-04-12T07:30:00+00:00"  # 09:30 in Madrid (summer time)
    assert first["location"]["lat"] == 41.3851 and first["location"]["accuracy_m"] == 10  # decimal commas
    assert first["fields"] == {"species": "Erinaceus europaeus", "count": 1, "note": "under the hedge by the school"}
    assert first["media"][0]["filename"] == "hedgehog.jpg" and first["media"][0]["content_type"] == "image/jpeg"
    assert first["enrichments"]["recorder"]["status"] == "done", "imported rows are enriched as any other"
    assert first["grade"] is not None
    assert stored["old-project:OP-6"]["fields"]["count"] == 12


def test_a_second_run_adds_nothing(engine, media):
    old_csv(engine, media)
    again = old_csv(engine, media)
    assert (again.stored, again.duplicates, again.refused) == (0, 3, 3)
    assert len(observations(engine)) == 3
    with engine.db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Account)).scalar_one() == 1
    dry = old_csv(engine, media, dry_run=True)
    assert (dry.stored, dry.duplicates) == (0, 3), "a dry run says what is stored already"


def test_only_people_who_consented_get_an_account(engine, media):
    old_csv(engine, media)
    stored = observations(engine)
    marta, jordi = stored["old-project:OP-1"], stored["old-project:OP-2"]
    with transaction(engine.sessions) as s:
        account = s.get(Account, marta["contributor_id"])
        assert (account.display_name, account.email) == ("Marta Puig", "marta.puig@example.org")
        assert s.scalars(select(Membership.role).where(Membership.account_id == account.id)).all() == ["contributor"]
        consent = s.scalars(select(Consent).where(Consent.account_id == account.id)).one()
        assert (consent.project, consent.choice, consent.version, consent.agreed) == ("old", "licence", "2", True)

    assert jordi["contributor_id"] is None
    assert stored["old-project:OP-6"]["source_contributor"] == jordi["source_contributor"], "one person, one key"
    key = (Path(engine.settings.data_dir) / "import-pseudonym.key").read_text().strip().encode()
    assert jordi["source_contributor"] == hmac.new(key, b"old-project\x1fu18", hashlib.sha256).hexdigest()
    text = everything_stored(engine)
    assert "Jordi" not in text and "Soler" not in text


def test_the_pseudonym_key_is_made_once_and_private(engine, media):
    old_csv(engine, media)
    key_file = Path(engine.settings.data_dir) / "import-pseudonym.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_text()
    import_file(engine, "old", DATA / "walks.geojson")
    assert key_file.read_text() == before


def test_the_pseudonym_key_may_come_from_a_variable(engine, media, monkeypatch):
    monkeypatch.setenv("OLD_IMPORT_KEY", "a secret of this observatory")
    old_csv(engine, media, pseudonym_key_setting="env:OLD_IMPORT_KEY")
    jordi = observations(engine)["old-project:OP-2"]
    assert jordi["source_contributor"] == hmac.new(b"a secret of this observatory", b"old-project\x1fu18",
                                                   hashlib.sha256).hexdigest()
    assert not (Path(engine.settings.data_dir) / "import-pseudonym.key").exists()
    with pytest.raises(SourceError, match="NOT_SET_ANYWHERE"):
        old_csv(engine, media, pseudonym_key_setting="env:NOT_SET_ANYWHERE")


def test_a_csv_without_a_mapping_or_with_a_wrong_one_is_refused_whole(engine, tmp_path):
    with pytest.raises(SourceError, match="needs a mapping file"):
        import_file(engine, "old", DATA / "old_project.csv")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("id: Record\nobserved_at: When\nlat: Latitude\nlon: Longitude\n")
    with pytest.raises(SourceError, match=r"observed_at \('When'\).*Its header: Record;?"):
        import_file(engine, "old", DATA / "old_project.csv", mapping=mapping)
    mapping.write_text("id: Record\nobserved_at: Date\nlat: Latitude\nlon: Longitude\nwhatever: 1\n")
    with pytest.raises(SourceError, match="whatever"):
        import_file(engine, "old", DATA / "old_project.csv", mapping=mapping)


# -- iNaturalist -----------------------------------------------------------------------------


def test_an_inaturalist_export_is_recognised_by_its_header(engine):
    assert detect_format(DATA / "inat_export.csv") == "inat"
    summary = import_file(engine, "old", DATA / "inat_export.csv")
    assert summary.format == "inat"
    assert (summary.stored, summary.refused, summary.warnings) == (3, 2, 3)
    refused = {(line.source_id, line.code) for line in summary.lines if line.outcome == "refused"}
    # no licence on iNaturalist is all rights reserved, which this project does not take: never relicensed
    assert refused == {("150122904", "unknown_licence"), ("151008377", "location_missing")}
    warned = [line for line in summary.lines if line.outcome == "warning"]
    assert {line.code for line in warned} == {"media_url_not_fetched"}

    stored = observations(engine)
    fox = stored["inat:148201733"]
    assert fox["observed_at"] == "2023-04-12T08:15:00+00:00"
    assert fox["licence"] == "CC-BY-NC-4.0" and fox["location_privacy"] == "open"
    assert fox["fields"]["scientific_name"] == "Vulpes vulpes" and fox["fields"]["taxon_id"] == 42069
    assert fox["fields"]["captive"] is False
    assert fox["fields"]["source_url"] == "https://www.inaturalist.org/observations/148201733"
    hedgehog = stored["inat:149377812"]
    assert hedgehog["observed_at"] == "2023-05-02T22:00:00+00:00", "a date alone: midnight in the project's zone"
    assert hedgehog["location_privacy"] == "obscured" and hedgehog["licence"] == "CC0-1.0"
    assert fox["source_contributor"] == stored["inat:152774120"]["source_contributor"] != hedgehog["source_contributor"]
    assert all(o["contributor_id"] is None for o in stored.values()), "an iNaturalist export says nothing of consent"
    text = everything_stored(engine)
    for name in ("Fernanda", "fernanda_b", "Joaquim", "quim.v"):
        assert name not in text


# -- GeoJSON ---------------------------------------------------------------------------------


def test_geojson_features_become_observations(engine):
    summary = import_file(engine, "old", DATA / "walks.geojson")
    assert (summary.format, summary.stored, summary.refused) == ("geojson", 3, 1)
    assert [(line.row, line.code) for line in summary.lines] == [(3, "not_a_point")]
    stored = observations(engine)
    tit = stored["geojson:walk-2021-001"]
    assert (tit["location"]["lon"], tit["location"]["lat"], tit["location"]["accuracy_m"]) == (2.158, 41.403, 15)
    assert tit["fields"] == {"species": "Parus major", "count": 3} and tit["licence"] == "CC0-1.0"
    pigeon = stored["geojson:walk-2021-002"]
    assert pigeon["fields"]["habitat"] == {"type": "park", "trees": True}
    assert pigeon["observed_at"] == "2021-09-04T06:25:00+00:00"
    robin = [o for key, o in stored.items() if key.startswith("geojson:sha1-")]
    assert len(robin) == 1, "a feature without an id gets one from its values"
    assert "Pau" not in everything_stored(engine)
    again = import_file(engine, "old", DATA / "walks.geojson")
    assert (again.stored, again.duplicates) == (0, 3)


# -- Darwin Core Archive ---------------------------------------------------------------------

META = """<?xml version="1.0" encoding="UTF-8"?>
<archive xmlns="http://rs.tdwg.org/dwc/text/">
  <core encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy="" ignoreHeaderLines="1"
        rowType="http://rs.tdwg.org/dwc/terms/Occurrence">
    <files><location>occurrence.txt</location></files>
    <id index="0"/>
    <field index="1" term="http://rs.tdwg.org/dwc/terms/occurrenceID"/>
    <field index="2" term="http://rs.tdwg.org/dwc/terms/eventDate"/>
    <field index="3" term="http://rs.tdwg.org/dwc/terms/eventTime"/>
    <field index="4" term="http://rs.tdwg.org/dwc/terms/decimalLatitude"/>
    <field index="5" term="http://rs.tdwg.org/dwc/terms/decimalLongitude"/>
    <field index="6" term="http://rs.tdwg.org/dwc/terms/coordinateUncertaintyInMeters"/>
    <field index="7" term="http://rs.tdwg.org/dwc/terms/scientificName"/>
    <field index="8" term="http://rs.tdwg.org/dwc/terms/taxonRank"/>
    <field index="9" term="http://rs.tdwg.org/dwc/terms/individualCount"/>
    <field index="10" term="http://rs.tdwg.org/dwc/terms/recordedBy"/>
    <field index="11" term="http://purl.org/dc/terms/license"/>
  </core>
  <extension encoding="UTF-8" fieldsTerminatedBy="\\t" linesTerminatedBy="\\n" fieldsEnclosedBy=""
             ignoreHeaderLines="1" rowType="http://rs.gbif.org/terms/1.0/Multimedia">
    <files><location>multimedia.txt</location></files>
    <coreid index="0"/>
    <field index="1" term="http://purl.org/dc/terms/identifier"/>
    <field index="2" term="http://purl.org/dc/terms/type"/>
    <field index="3" term="http://purl.org/dc/terms/format"/>
  </extension>
</archive>
"""
OCCURRENCES = [
    ["id", "occurrenceID", "eventDate", "eventTime", "decimalLatitude", "decimalLongitude",
     "coordinateUncertaintyInMeters", "scientificName", "taxonRank", "individualCount", "recordedBy", "license"],
    ["1", "urn:catalog:old:1", "2018-06-01T10:00:00+02:00", "", "41.41", "2.12", "30", "Vulpes vulpes", "species", "2",
     "Núria Camps", "http://creativecommons.org/licenses/by/4.0/legalcode"],
    ["2", "urn:catalog:old:2", "2018-06-02", "21:15:00", "41.42", "2.13", "", "Strix aluco", "species", "",
     "Núria Camps", "http://creativecommons.org/publicdomain/zero/1.0/legalcode"],
    ["3", "urn:catalog:old:3", "2018-06-03", "", "", "", "", "Pica pica", "species", "1", "Núria Camps", ""],
]
MEDIA_ROWS = [
    ["coreid", "identifier", "type", "format"],
    ["1", "media/fox.jpg", "StillImage", "image/jpeg"],
    ["1", "https://example.org/fox-large.jpg", "StillImage", "image/jpeg"],
]


def make_archive(path: Path, photo: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("meta.xml", META)
        archive.writestr("occurrence.txt", "\n".join("\t".join(r) for r in OCCURRENCES) + "\n")
        archive.writestr("multimedia.txt", "\n".join("\t".join(r) for r in MEDIA_ROWS) + "\n")
        archive.writestr("media/fox.jpg", photo)
    return path


def test_a_darwin_core_archive_with_its_media(engine, tmp_path, photos):
    archive = make_archive(tmp_path / "old-dataset.zip", photos["coffee.jpg"])
    assert detect_format(archive) == "dwca"
    summary = import_file(engine, "old", archive)
    assert (summary.format, summary.stored, summary.refused, summary.warnings) == ("dwca", 2, 1, 1)
    assert {(line.source_id, line.code) for line in summary.lines} == {
        ("urn:catalog:old:1", "media_url_not_fetched"), ("urn:catalog:old:3", "location_missing")}
    stored = observations(engine)
    fox = stored["dwca:urn:catalog:old:1"]
    assert fox["observed_at"] == "2018-06-01T08:00:00+00:00" and fox["licence"] == "CC-BY-4.0"
    assert fox["fields"] == {"scientific_name": "Vulpes vulpes", "taxon_rank": "species", "count": 2}
    assert fox["location"]["accuracy_m"] == 30
    assert [(m["filename"], m["content_type"]) for m in fox["media"]] == [("fox.jpg", "image/jpeg")]
    owl = stored["dwca:urn:catalog:old:2"]
    assert owl["observed_at"] == "2018-06-02T19:15:00+00:00" and owl["licence"] == "CC0-1.0"
    assert fox["source_contributor"] == owl["source_contributor"] is not None
    assert "Núria" not in everything_stored(engine)
    assert import_file(engine, "old", archive).duplicates == 2


def test_a_zip_that_is_no_archive_is_named_as_such(engine, tmp_path):
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(SourceError, match="without meta.xml"):
        import_file(engine, "old", path)


# -- the command -----------------------------------------------------------------------------


@pytest.fixture
def run(settings_factory, tmp_path, engine):
    settings_factory(REGISTRY)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path, timeout=120)

    return run


def test_the_command_dry_run_report_then_import(run, engine, media, tmp_path):
    report = tmp_path / "report.csv"
    args = ["import", "old", str(DATA / "old_project.csv"), "--mapping", str(DATA / "old_project.mapping.yaml"),
            "--media", str(media)]
    dry = run(*args, "--dry-run", "--report", str(report), "--no-progress")
    assert dry.returncode == 1, dry.stderr
    assert "6 rows (csv): 3 would be stored, 0 already stored, 3 refused" in dry.stdout
    assert len(list(csv.DictReader(report.open(encoding="utf-8")))) == 3
    assert observations(engine) == {}

    real = run(*args, "--batch", "2")
    assert real.returncode == 1, "rows were refused"
    assert "3 stored, 0 already stored, 3 refused" in real.stdout
    assert "row 4: observed_at [Date]: column 'Date': '32/04/2019'" in real.stderr
    assert "importing" in real.stderr, "a progress bar"
    assert len(observations(engine)) == 3


def test_the_command_exits_0_when_every_row_is_stored_or_was(run, engine, tmp_path):
    clean = tmp_path / "clean.geojson"
    clean.write_text(textwrap.dedent("""\
        {"type": "FeatureCollection", "features": [
          {"type": "Feature", "id": 7, "geometry": {"type": "Point", "coordinates": [2.1, 41.4]},
           "properties": {"observed_at": "2022-01-01T10:00:00Z", "species": "Larus michahellis"}}]}"""))
    first = run("import", "old", str(clean), "--no-progress")
    assert first.returncode == 0, first.stderr
    again = run("import", "old", str(clean), "--format", "geojson", "--no-progress")
    assert again.returncode == 0 and "0 stored, 1 already stored, 0 refused" in again.stdout
    wrong = run("import", "old", str(clean), "--format", "csv")
    assert wrong.returncode == 2 and "needs a mapping file" in wrong.stderr
