"""CSV that opens well: a column per field of the project's kinds, plugins' columns, the licence
and place-privacy columns, Excel's dialect, no row cap and memory that does not grow with rows.

A test plugin gives the project two kinds with typed fields and one export column.
"""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable

import pytest
import sqlalchemy as sa

from core import hookimpl, lifecycle
from core.db.models import Observation
from core.engine import Engine
from core.errors import EngineError
from core.export import EXPORT_BATCH, ExportOptions, export
from core.filters import parse_filters
from core.types import ExportColumn, ObservationType
from tests.conftest import TEST_PLUGINS, draft


@hookimpl
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    register(ObservationType(name="tree", title="Tree", schema={
        "type": "object",
        "properties": {"species": {"type": "string"}, "height_m": {"type": "number"}, "tags": {"type": "array"}},
    }))
    register(ObservationType(name="nest", title="Nest", schema={
        "type": "object", "properties": {"eggs": {"type": "integer"}, "species": {"type": "string"}},
    }))


@hookimpl
def export_columns(project: Any) -> list[ExportColumn]:
    # what a plugin can see of a row: the place and the contributor as the export shows them
    return [ExportColumn("seen_place", lambda o: f"{o.location.lat},{o.location.lon}"),
            ExportColumn("seen_contributor", lambda o: o.contributor_id)]


PLUGINS = TEST_PLUGINS + ",woods=tests.test_export_csv"
REGISTRY = """
services:
  woods:
    summary: tree and nest kinds (tests of core.export)
    settings: {type: object}
projects:
  - slug: woods
    name: Woods
    auto_publish: true
    location_precision: 2
    licence: CC-BY-4.0
    licences: [CC-BY-4.0, CC-BY-SA-4.0]
    services: {woods: {}}
  - slug: meadow
    name: Meadow
    auto_publish: true
    location_precision: 3
    services: {}
"""


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY, plugin_modules=PLUGINS)


def text(engine: Engine, **kwargs: Any) -> str:
    return "".join(export(engine, engine.registry.project("woods"), kwargs.pop("fmt", "csv"), **kwargs))


def table(engine: Engine, delimiter: str = ",", **kwargs: Any) -> tuple[list[str], list[dict[str, str]]]:
    found = text(engine, **kwargs)
    reader = csv.DictReader(io.StringIO(found.removeprefix("\ufeff")), delimiter=delimiter)
    return list(reader.fieldnames or []), list(reader)


def submit(engine: Engine, contributor: int | None = None, **parts: Any) -> int:
    return lifecycle.submit(engine, "woods", draft(**parts), contributor_id=contributor).observation_id


def test_one_column_per_schema_field_then_the_rest(engine):
    tree = submit(engine, kind="tree", fields={"species": "Quercus ilex", "height_m": 12.5, "tags": ["old", "big"],
                                               "comment": "by the gate"})
    nest = submit(engine, kind="nest", fields={"eggs": 4, "species": "Parus major"})
    plain = submit(engine, fields={"note": "a generic one"})
    header, rows = table(engine)
    assert header[:8] == ["id", "kind", "observed_at", "lat", "lon", "accuracy_m", "status", "grade"]
    fields = [h for h in header if h.startswith("field.")]
    assert fields == ["field.species", "field.height_m", "field.tags", "field.eggs"], "schema order, each name once"
    assert header[-6:] == ["licence", "licence_uri", "gbif_eligible", "location_privacy", "location_generalised",
                           "coordinate_uncertainty_m"]
    assert {"fields_other", "flags", "media_count", "seen_place", "seen_contributor"} <= set(header)
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[tree]["field.species"] == "Quercus ilex" and by_id[tree]["field.height_m"] == "12.5"
    assert by_id[tree]["field.tags"] == '["old", "big"]' and by_id[tree]["field.eggs"] == ""
    assert by_id[tree]["fields_other"] == '{"comment": "by the gate"}'
    assert by_id[nest]["field.eggs"] == "4" and by_id[nest]["fields_other"] == ""
    assert by_id[plain]["fields_other"] == '{"note": "a generic one"}'


def test_licences_and_what_plugins_see_in_a_public_export(engine):
    obs_id = submit(engine, kind="tree", licence="CC-BY-SA-4.0", location={"lat": 41.387654, "lon": 2.170123})
    _, rows = table(engine)
    (row,) = rows
    assert int(row["id"]) == obs_id
    assert (row["licence"], row["gbif_eligible"]) == ("CC-BY-SA-4.0", "false")
    assert row["licence_uri"] == "http://creativecommons.org/licenses/by-sa/4.0/legalcode"
    assert row["seen_place"] == "41.39,2.17" and row["seen_contributor"] == "", "plugins see the public row"
    assert row["location_privacy"] == "open" and row["location_generalised"] == "true"
    assert float(row["coordinate_uncertainty_m"]) == pytest.approx(1110)


def test_staff_export_names_the_contributor_and_the_exact_place(engine):
    from core.tokens import create_token

    person = create_token(engine, "contributor", "woods", "Pat").account_id
    submit(engine, person, kind="tree", location={"lat": 41.387654, "lon": 2.170123, "accuracy_m": 4},
           location_privacy="private")
    header, rows = table(engine, options=ExportOptions(scope="all"))
    assert header[8:10] == ["contributor_id", "source_contributor"]
    (row,) = rows
    assert row["contributor_id"] == str(person) and row["seen_contributor"] == str(person)
    assert (row["lat"], row["lon"], row["coordinate_uncertainty_m"]) == ("41.387654", "2.170123", "4.0")
    assert row["location_generalised"] == "false"
    _, public = table(engine)
    assert public[0]["lat"] == "" and public[0]["seen_place"] == "0.0,0.0", "a private place reaches no plugin"


def test_excel_dialect_bom_semicolons_and_formulas_neutralised(engine):
    submit(engine, kind="tree", fields={"species": "=cmd|' /C calc'!A0", "height_m": -2.5})
    raw = text(engine, excel=True)
    assert raw.startswith("\ufeffid;kind;")
    _, rows = table(engine, ";", excel=True)
    (row,) = rows
    assert row["field.species"] == "'=cmd|' /C calc'!A0", "text a spreadsheet would run starts with '"
    assert row["field.height_m"] == "-2.5", "a number stays a number"
    _, plain = table(engine)
    assert plain[0]["field.species"] == "=cmd|' /C calc'!A0", "the plain CSV keeps the value as it is"


def test_filters_apply_to_the_export(engine):
    submit(engine, kind="tree", fields={"species": "Pinus pinea", "height_m": 20})
    low = submit(engine, kind="tree", fields={"species": "Pinus pinea", "height_m": 3})
    project = engine.registry.project("woods")
    params = {"field.height_m<": "10"}
    _, rows = table(engine, options=ExportOptions(filters=parse_filters(engine, project, params), filter_params=params))
    assert [int(r["id"]) for r in rows] == [low]


def test_an_unknown_format_is_refused_before_any_row(engine):
    with pytest.raises(EngineError) as refused:
        export(engine, engine.registry.project("woods"), "xlsx")
    assert refused.value.code == "unknown_format"


def _bulk(engine: Engine, n: int, start: int = 0) -> None:
    when = datetime(2026, 5, 1, 7, 30, tzinfo=timezone.utc)
    rows = [{"project": "woods", "content_hash": f"{i:064x}", "kind": "tree", "observed_at": when,
             "lat": 41.0 + i / 1e5, "lon": 2.0, "accuracy_m": 5.0, "status": "published",
             "fields": {"species": "Quercus ilex", "height_m": i, "note": "n" * 500}}
            for i in range(start, start + n)]
    with engine.db.begin() as conn:
        conn.execute(sa.insert(Observation.__table__), rows)


def _peak(engine: Engine, fmt: str) -> tuple[int, int]:
    tracemalloc.start()
    try:
        size = sum(len(chunk) for chunk in export(engine, engine.registry.project("woods"), fmt))
        return size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_no_row_cap_and_memory_does_not_grow_with_rows(engine, fmt):
    _bulk(engine, 2 * EXPORT_BATCH)
    small_size, small = _peak(engine, fmt)
    _bulk(engine, 10 * EXPORT_BATCH, start=2 * EXPORT_BATCH)
    large_size, large = _peak(engine, fmt)
    assert large_size > 5 * small_size
    assert large < small * 1.5 + 512 * 1024, f"peak {large} bytes for 6x the rows of a {small}-byte peak"
    if fmt == "csv":
        _, rows = table(engine)
        assert len(rows) == 12 * EXPORT_BATCH, "every row, no cap"


@pytest.mark.parametrize("precision", [None, 0, 2, 5])
def test_the_export_places_are_core_privacys_bit_for_bit(engine, precision):
    import dataclasses
    import random

    from core.export import PlaceRule
    from core.privacy import public_location
    from core.types import Location

    project = dataclasses.replace(engine.registry.project("woods"), location_precision=precision, obscured_precision=1)
    rule = PlaceRule(project, public=True)
    draw = random.Random(precision)
    for _ in range(2000):
        exact = Location(draw.uniform(-90, 90), draw.uniform(-180, 180), draw.choice([None, 0.0, 3.5, 50_000.0]))
        for privacy in ("open", "obscured", "private", "unknown"):
            shown, generalised = rule(exact.lat, exact.lon, exact.accuracy_m, privacy)
            assert shown == public_location(exact, project, privacy)
            assert generalised == (shown is not None and (privacy == "obscured" or precision is not None))
    staff = PlaceRule(project, public=False)
    assert staff(41.387654, 2.170123, 4.0, "private") == (Location(41.387654, 2.170123, 4.0), False)


def _insert(engine: Engine, rows: list[dict[str, Any]]) -> list[int]:
    """Observations stored as they are given (published, in woods unless said), their ids in order."""
    when = datetime(2026, 5, 1, 7, 30, tzinfo=timezone.utc)
    base = {"project": "woods", "kind": "tree", "observed_at": when, "lat": 41.0, "lon": 2.0, "accuracy_m": 5.0,
            "status": "published", "fields": {}}
    with engine.db.begin() as conn:
        first = conn.execute(sa.select(sa.func.coalesce(sa.func.max(Observation.id), 0))).scalar_one()
        conn.execute(sa.insert(Observation.__table__),
                     [{**base, "content_hash": f"{first + i:064x}", **row} for i, row in enumerate(rows)])
        return list(conn.execute(sa.select(Observation.id).where(Observation.id > first).order_by(Observation.id))
                    .scalars())


@pytest.mark.parametrize("precision", [None, 0, 2, 5])
def test_the_places_of_a_csv_are_core_privacys_bit_for_bit(engine, precision):
    """The database snaps the places of a CSV (core.privacy.snap_sql): each cell reads back as the
    very double core.privacy.public_location gives, whatever the privacy stored."""
    import dataclasses
    import random

    from core.privacy import public_location
    from core.types import Location

    draw = random.Random(precision)
    privacies = ["open", "obscured", "private", "", "unknown"]
    made = [{"lat": draw.uniform(-90, 90), "lon": draw.uniform(-180, 180),
             "accuracy_m": draw.choice([None, 0.0, 3.5, 1110.0, 50_000.0]), "location_privacy": privacies[i % 5]}
            for i in range(600)]
    ids = _insert(engine, made)
    project = dataclasses.replace(engine.registry.project("woods"), location_precision=precision, obscured_precision=1)
    rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO("".join(export(engine, project, "csv"))))}
    assert sorted(rows) == ids
    for obs_id, stored in zip(ids, made):
        row = rows[obs_id]
        privacy = stored["location_privacy"] or "open"
        shown = public_location(Location(stored["lat"], stored["lon"], stored["accuracy_m"]), project, privacy)
        assert row["location_privacy"] == privacy
        if shown is None:
            assert row["lat"] == row["lon"] == row["accuracy_m"] == row["coordinate_uncertainty_m"] == ""
            assert row["location_generalised"] == "" and row["seen_place"] == "0.0,0.0"
            continue
        assert (float(row["lat"]), float(row["lon"])) == (shown.lat, shown.lon), (stored, row)
        uncertainty = row["coordinate_uncertainty_m"]
        assert (float(uncertainty) if uncertainty else None) == shown.accuracy_m
        assert row["accuracy_m"] == ("" if stored["accuracy_m"] is None else str(stored["accuracy_m"]))
        assert row["location_generalised"] == ("true" if privacy == "obscured" or precision is not None else "false")
        assert row["seen_place"] == f"{shown.lat},{shown.lon}", "plugins see the same place"


def test_media_count_and_flags_come_with_each_row(engine):
    """media_count is what the engine's own column computes on a row (with other plugins' columns
    or without any), and flags lists the codes of the row's quality flags in their order."""
    from core.builtin.columns import export_columns as engine_columns
    from core.db.models import MediaBlob, ObservationMedia, QualityFlag

    ids = {slug: _insert(engine, [{"project": slug} for _ in range(7)]) for slug in ("woods", "meadow")}
    with engine.db.begin() as conn:
        conn.execute(sa.insert(MediaBlob.__table__), [
            {"sha256": f"{n:064x}", "size": 10, "content_type": "image/jpeg"} for n in range(3)])
        media, flags = [], []
        for obs_ids in ids.values():
            for n, obs_id in enumerate(obs_ids):
                media += [{"observation_id": obs_id, "sha256": f"{k % 3:064x}", "position": k} for k in range(n % 4)]
                flags += [{"observation_id": obs_id, "plugin": "woods", "code": code, "severity": "warning",
                           "message": "m"} for code in ("far", "odd")[:n % 3]]
        conn.execute(sa.insert(ObservationMedia.__table__), media)
        conn.execute(sa.insert(QualityFlag.__table__), flags)
    (column,) = engine_columns(project=engine.registry.project("meadow"))
    for slug, obs_ids in ids.items():
        header = next(csv.reader(io.StringIO(text_of(engine, slug))))
        assert ("seen_place" in header) == (slug == "woods")
        rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text_of(engine, slug)))}
        for n, obs_id in enumerate(obs_ids):
            assert rows[obs_id]["media_count"] == str(column.value(SimpleNamespace(media=[None] * (n % 4)))) == \
                str(n % 4)
            assert rows[obs_id]["flags"] == json.dumps(["far", "odd"][:n % 3])


def text_of(engine: Engine, slug: str, **kwargs: Any) -> str:
    return "".join(export(engine, engine.registry.project(slug), "csv", **kwargs))


def test_rows_with_large_fields_are_read_in_smaller_pages_and_all_exported(engine):
    """Rows whose fields pass SMALL_FIELDS characters end a page of EXPORT_BATCH rows; every row
    still comes once, in id order, its fields whole."""
    from core.export import LARGE_BATCH, SMALL_FIELDS

    def note(i: int) -> str:
        return ("x" * (SMALL_FIELDS + 100)) if i % 7 in (3, 4) or LARGE_BATCH <= i < 2 * LARGE_BATCH else f"n{i}"

    count = EXPORT_BATCH + 3 * LARGE_BATCH + 5
    ids = _insert(engine, [{"fields": {"note": note(i), "species": "Quercus ilex"}} for i in range(count)])
    rows = list(csv.DictReader(io.StringIO(text_of(engine, "woods"))))
    assert [int(r["id"]) for r in rows] == ids
    assert [json.loads(r["fields_other"])["note"] for r in rows] == [note(i) for i in range(count)]
    assert {r["field.species"] for r in rows} == {"Quercus ilex"}


def test_times_are_written_in_utc_whatever_the_database_session_zone():
    """PostgreSQL gives times in its session's zone, SQLite the UTC text it keeps: an export
    writes both as the same UTC instant (docs/data-publishers.md: observed_at in UTC)."""
    from datetime import timedelta

    from core.export import as_utc, iso_utc

    madrid_summer = timezone(timedelta(hours=2))
    for stored in (datetime(2026, 5, 1, 9, 30, 0, 500, tzinfo=madrid_summer), "2026-05-01 07:30:00.000500",
                   datetime(2026, 5, 1, 7, 30, 0, 500), "2026-05-01T07:30:00.000500"):
        assert iso_utc(stored) == "2026-05-01T07:30:00.000500+00:00", stored
        assert as_utc(stored).utcoffset() == timedelta(0)
    assert iso_utc("2026-05-01 07:30:00.000000") == "2026-05-01T07:30:00+00:00"
