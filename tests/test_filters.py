"""core.filters: what each filter lets through, the 422s that name what is wrong, places tested as
the caller sees them, and ``core.queries.observations`` with the same filters.

This module is also the ``survey`` test plugin (``survey=tests.test_filters``): one kind whose
schema has an integer, a number, a string, a string enum, an integer enum and a boolean field.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from sqlalchemy import select

from core import hookimpl, lifecycle, queries
from core.db.models import Observation
from core.db.session import transaction
from core.engine import Engine
from core.filters import (FILTER_PARAMETERS, FilterError, ObservationFilter, filter_conditions, filter_params,
                          parse_filters)
from core.types import ObservationType
from tests.conftest import TEST_PLUGINS, draft

SURVEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "count": {"type": "integer", "minimum": 0},
        "length_cm": {"type": "number"},
        "species": {"type": "string"},
        "sex": {"type": "string", "enum": ["female", "male", "unknown"]},
        "category": {"type": "integer", "enum": [1, 2, 3]},
        "alive": {"type": "boolean"},
    },
    "additionalProperties": False,
}


@hookimpl
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    register(ObservationType(name="survey", title="Survey", schema=SURVEY_SCHEMA))


PLUGINS = TEST_PLUGINS + ",survey=tests.test_filters"
SERVICE = """
  survey:
    summary: a kind with typed fields (tests of core.filters)
    settings: {type: object}
"""
REGISTRY = f"""
services:{SERVICE}
projects:
  - slug: field
    name: Field
    location_precision: 2
    obscured_precision: 1
    licence: CC-BY-4.0
    licences: [CC-BY-4.0, CC0-1.0]
    services: {{survey: {{}}}}
  - slug: plain
    name: Plain
    services: {{}}
"""


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY, plugin_modules=PLUGINS)


def submit(engine: Engine, project: str = "field", *, uploads: Any = None, contributor: int | None = None,
           **parts: Any) -> int:
    return lifecycle.submit(engine, project, draft(**parts), uploads, contributor).observation_id


def survey(engine: Engine, **fields: Any) -> int:
    return submit(engine, kind="survey", fields=fields)


def parse(engine: Engine, project: str = "field", **params: str) -> ObservationFilter:
    return parse_filters(engine, engine.registry.project(project), params)


def matching(engine: Engine, params: dict[str, str], project: str = "field", *, staff: bool = True,
             contributor_id: int | None = None) -> set[int]:
    """Ids of the observations the filters of ``params`` let through (as staff by default)."""
    context = engine.registry.project(project)
    where = filter_conditions(parse_filters(engine, context, params), context, staff=staff,
                              contributor_id=contributor_id)
    with transaction(engine.readers) as session:
        return set(session.scalars(select(Observation.id).where(Observation.project == project, *where)))


def refused(engine: Engine, params: dict[str, str], project: str = "field") -> FilterError:
    with pytest.raises(FilterError) as caught:
        parse_filters(engine, engine.registry.project(project), params)
    assert caught.value.http_status == 422
    return caught.value


# --- fields of the kind's schema ------------------------------------------------------------------


def test_integer_field_comparisons(engine):
    one, three, five = (survey(engine, count=n) for n in (1, 3, 5))
    assert matching(engine, {"field.count": "3"}) == {three}
    assert matching(engine, {"field.count>": "3"}) == {three, five}  # field.count>=3 as a URL sends it
    assert matching(engine, {"field.count<": "3"}) == {one, three}  # field.count<=3
    assert matching(engine, {"field.count": "gte:3"}) == {three, five}
    assert matching(engine, {"field.count": "gt:3"}) == {five}
    assert matching(engine, {"field.count": "lt:3"}) == {one}
    assert matching(engine, {"field.count": "lte:1"}) == {one}
    assert matching(engine, {"field.count": "ne:3"}) == {one, five}
    assert matching(engine, {"field.count": "in:1,5"}) == {one, five}
    assert matching(engine, {"field.count>": "2", "field.count<": "4"}) == {three}


def test_cli_style_filters_split_as_a_url_does(engine):
    assert filter_params(["field.count>=3", "status=published", "field.sex=in:male,female"]) == {
        "field.count>": "3", "status": "published", "field.sex": "in:male,female"}
    with pytest.raises(FilterError) as caught:
        filter_params(["count3"])
    assert "NAME=VALUE" in caught.value.message
    with pytest.raises(FilterError) as caught:
        filter_params(["field.count>=3", "field.count>=4"])
    assert "'field.count>' is given twice" in caught.value.message
    assert parse(engine, **filter_params(["field.count>=3"])) == parse(engine, **{"field.count": "gte:3"})


def test_string_enum_boolean_and_number_fields(engine):
    fox = survey(engine, species="Vulpes vulpes", sex="female", alive=True, length_cm=62.5, category=1)
    badger = survey(engine, species="Meles meles", sex="male", alive=False, length_cm=80, category=2)
    unsure = survey(engine, species="Vulpes vulpes", sex="unknown", category=3)
    assert matching(engine, {"field.species": "Vulpes vulpes"}) == {fox, unsure}
    assert matching(engine, {"field.sex": "male"}) == {badger}
    assert matching(engine, {"field.sex": "in:female,unknown"}) == {fox, unsure}
    assert matching(engine, {"field.alive": "true"}) == {fox}
    assert matching(engine, {"field.alive": "false"}) == {badger}
    assert matching(engine, {"field.alive": "ne:true"}) == {badger}  # no value: not compared
    assert matching(engine, {"field.length_cm>": "62.5"}) == {fox, badger}
    assert matching(engine, {"field.length_cm": "gt:62.5"}) == {badger}
    assert matching(engine, {"field.category": "in:1,3"}) == {fox, unsure}
    assert matching(engine, {"field.category": "2", "field.sex": "male"}) == {badger}


def test_a_field_of_another_type_in_a_free_kind_is_never_cast(engine):
    """A generic observation may hold ``count: "many"``: a field filter of the survey kind leaves it
    out, on PostgreSQL too (where casting "many" to a number would fail the whole query)."""
    counted = survey(engine, count=7)
    submit(engine, fields={"count": "many"})
    submit(engine, fields={"count": 9})  # a number, but of a kind whose schema has no such field
    assert matching(engine, {"field.count>": "3"}) == {counted}
    assert matching(engine, {"field.count": "ne:1"}) == {counted}


def test_unknown_fields_name_the_field_and_the_known_ones(engine):
    error = refused(engine, {"field.colour": "red"})
    assert error.code == "unknown_field" and "'colour'" in error.message
    assert "count" in error.message and "species" in error.message
    error = refused(engine, {"kind": "generic", "field.count": "3"})  # generic has no schema of its own
    assert error.code == "unknown_field" and "'count'" in error.message and "generic" in error.message
    error = refused(engine, {"field.note": "x"}, project="plain")  # a project with free fields only
    assert error.code == "unknown_field" and "'note'" in error.message


def test_wrong_field_values_name_the_field_the_value_and_the_type(engine):
    cases = {
        "field.count": ("many", "an integer"),
        "field.count>": ("2.5", "an integer"),
        "field.length_cm": ("long", "a number"),
        "field.alive": ("yes", "true or false"),
        "field.sex": ("dog", "'female'"),
        "field.category": ("in:1,9", "one of"),
    }
    for name, (value, expected) in cases.items():
        error = refused(engine, {name: value})
        assert error.code == "invalid_filter_value", (name, error.message)
        shown = value.removeprefix("in:1,")
        assert name.rstrip("<>") in error.message and repr(shown) in error.message and expected in error.message, \
            error.message
    error = refused(engine, {"field.alive>": "true"})
    assert "field.alive" in error.message and "boolean" in error.message
    error = refused(engine, {"field.count>": "gt:3"})  # two operators
    assert "field.count" in error.message


# --- core filters ---------------------------------------------------------------------------------


def test_unknown_filter_names_it_and_lists_the_known_ones(engine):
    error = refused(engine, {"stauts": "pending"})
    assert error.code == "unknown_filter" and "'stauts'" in error.message
    assert all(name in error.message for name in FILTER_PARAMETERS)


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("status", "done", "pending"),
    ("grade", "great", "research"),
    ("contributor", "me", "account id"),
    ("since", "2026-05-01T00:00:00", "UTC offset"),  # naive
    ("until", "yesterday", "ISO 8601"),
    ("created_since", "0001-01-01T00:00:00+01:00", "years 1 to 9999"),
    ("has_media", "maybe", "true or false"),
    ("licence", "GPL", "CC0-1.0"),
    ("polygon", "not json", "GeoJSON"),
    ("polygon", '{"type": "Point", "coordinates": [1, 2]}', "Polygon"),
    ("polygon", '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1]]]}', "4 or more"),
    ("polygon", '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}', "same as the first"),
    ("polygon", '{"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 95], [0, 0]]]}', "latitude"),
    ("polygon", '{"type": "Polygon", "coordinates": [[[0, 0], [1, "a"], [1, 1], [0, 0]]]}', "[lon, lat]"),
])
def test_invalid_core_values_name_the_parameter_and_what_it_takes(engine, name, value, expected):
    error = refused(engine, {name: value})
    assert error.code == "invalid_filter_value"
    assert repr(name) in error.message and expected in error.message, error.message


def test_a_polygon_has_at_most_200_vertices(engine):
    ring = [[i / 1000, (i % 2) / 1000] for i in range(200)] + [[0, 1]]
    ring.append(ring[0])
    geometry = '{"type": "Polygon", "coordinates": [%s]}' % ring
    error = refused(engine, {"polygon": geometry})
    assert "200 vertices" in error.message
    parse(engine, polygon='{"type": "Polygon", "coordinates": [%s]}' % (ring[:199] + [ring[0]]))


def test_bbox_out_of_range_keeps_its_code(engine):
    error = refused(engine, {"bbox": "1,50,3,40"})
    assert error.code == "invalid_bbox" and "'bbox'" in error.message


def test_core_filters_narrow(engine, photos):
    with_photo = submit(engine, uploads=[lifecycle.Upload(photos["camera.png"], "camera.png", "image/png")],
                        observed_at="2026-05-02T10:00:00+00:00", licence="CC0-1.0")
    surveyed = submit(engine, kind="survey", fields={"count": 2}, observed_at="2026-05-03T10:00:00+00:00")
    default = submit(engine, observed_at="2026-05-04T10:00:00+00:00")
    every = {with_photo, surveyed, default}
    assert matching(engine, {}) == every
    assert matching(engine, {"has_media": "true"}) == {with_photo}
    assert matching(engine, {"has_media": "false"}) == {surveyed, default}
    assert matching(engine, {"kind": "survey"}) == {surveyed}
    assert matching(engine, {"licence": "CC0-1.0"}) == {with_photo}
    assert matching(engine, {"licence": "CC-BY-4.0"}) == {surveyed, default}  # the project's default
    assert matching(engine, {"licence": "CC-BY-NC-4.0"}) == set()
    assert matching(engine, {"since": "2026-05-03T10:00:00Z"}) == {surveyed, default}
    assert matching(engine, {"until": "2026-05-03T10:00:00Z"}) == {with_photo}  # exclusive
    assert matching(engine, {"since": "2026-05-03T11:00:00+02:00", "until": "2026-05-04T00:00:00Z"}) == {surveyed}
    assert matching(engine, {"status": "pending"}) == every
    assert matching(engine, {"status": "published"}) == set()
    now = datetime.now(timezone.utc)
    later, earlier = (now + timedelta(hours=1)).isoformat(), (now - timedelta(hours=1)).isoformat()
    assert matching(engine, {"created_since": earlier}) == every
    assert matching(engine, {"created_since": later}) == set()
    assert matching(engine, {"created_until": later}) == every
    assert matching(engine, {"updated_since": later}) == set()
    lifecycle.update_fields(engine, surveyed, {"count": 3}, actor="test")
    with transaction(engine.readers) as session:
        changed = session.get(Observation, surveyed).updated_at
    assert matching(engine, {"updated_since": changed.isoformat()}) == {surveyed}


def test_contributor_filter(engine):
    from core.tokens import create_token

    mine = create_token(engine, "contributor", "field", "me").contributor_id
    own = submit(engine, contributor=mine)
    submit(engine)
    assert matching(engine, {"contributor": str(mine)}) == {own}


# --- places ---------------------------------------------------------------------------------------

SQUARE = '{"type": "Polygon", "coordinates": [[[2.0, 41.0], [3.0, 41.0], [3.0, 42.0], [2.0, 42.0], [2.0, 41.0]]]}'
# a U open to the north: arms at lon 0-1 and 2-3, joined south of lat 1; the notch (1-2, 1-3) is outside
U_SHAPE = ('{"type": "Polygon", "coordinates": [[[0, 0], [3, 0], [3, 3], [2, 3], [2, 1], [1, 1], [1, 3], '
           '[0, 3], [0, 0]]]}')
# the square with a hole in its middle
HOLED = ('{"type": "Polygon", "coordinates": [[[2.0, 41.0], [3.0, 41.0], [3.0, 42.0], [2.0, 42.0], [2.0, 41.0]], '
         '[[2.4, 41.4], [2.6, 41.4], [2.6, 41.6], [2.4, 41.6], [2.4, 41.4]]]}')


def at(engine: Engine, lat: float, lon: float, **parts: Any) -> int:
    return submit(engine, location={"lat": lat, "lon": lon, "accuracy_m": 5}, **parts)


def test_polygon_inside_outside_concave_and_holes(engine):
    inside = at(engine, 41.39, 2.17)
    outside = at(engine, 40.5, 2.5)
    in_hole = at(engine, 41.5, 2.5)
    left_arm, right_arm, notch, below = at(engine, 2.5, 0.5), at(engine, 2.5, 2.5), at(engine, 2.5, 1.5), \
        at(engine, 0.5, 1.5)
    assert matching(engine, {"polygon": SQUARE}) == {inside, in_hole}
    assert outside not in matching(engine, {"polygon": SQUARE})
    assert matching(engine, {"polygon": HOLED}) == {inside}
    assert matching(engine, {"polygon": U_SHAPE}) == {left_arm, right_arm, below}
    assert notch not in matching(engine, {"polygon": U_SHAPE})
    # a polygon and a box together: both must hold
    assert matching(engine, {"polygon": U_SHAPE, "bbox": "0,0,1,3"}) == {left_arm}


def test_places_are_tested_as_the_caller_sees_them(engine):
    """Two places in one public cell (0.01°) answer every place filter of a caller who sees the
    grid identically; staff and the contributor see the exact place."""
    from core.tokens import create_token

    owner = create_token(engine, "contributor", "field", "owner").contributor_id
    exact = at(engine, 41.3912340, 2.1712340, contributor=owner)
    same_cell = at(engine, 41.3860010, 2.1660010, contributor=owner)
    # a small triangle around the exact place only, and a box around the other one only
    triangle = ('{"type": "Polygon", "coordinates": [[[2.1712, 41.3912], [2.1713, 41.3912], '
                '[2.1712, 41.3913], [2.1712, 41.3912]]]}')
    box = "2.1659,41.3859,2.1661,41.3861"
    centre = '{"type": "Polygon", "coordinates": [[[2.169, 41.389], [2.171, 41.389], [2.17, 41.391], [2.169, 41.389]]]}'
    assert matching(engine, {"polygon": triangle}, staff=True) == {exact}
    assert matching(engine, {"bbox": box}, staff=True) == {same_cell}
    assert matching(engine, {"polygon": triangle}, staff=False, contributor_id=owner) == {exact}
    for params in ({"polygon": triangle}, {"bbox": box}, {"polygon": centre}, {"bbox": "2.1699,41.3899,2.1701,41.3901"}):
        public = matching(engine, params, staff=False)
        assert public in (set(), {exact, same_cell}), params  # never one without the other
    assert matching(engine, {"polygon": centre}, staff=False) == {exact, same_cell}  # the cell's point


def test_private_places_match_no_public_place_filter(engine):
    hidden = at(engine, 41.39, 2.17, location_privacy="private")
    shown = at(engine, 41.39, 2.17)
    world = '{"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}'
    assert matching(engine, {"polygon": world}, staff=False) == {shown}
    assert matching(engine, {"bbox": "-180,-90,180,90"}, staff=False) == {shown}
    assert matching(engine, {"polygon": world}, staff=True) == {hidden, shown}


# --- core.queries -----------------------------------------------------------------------------------


def test_queries_bbox_across_the_antimeridian(engine):
    east, west, greenwich = at(engine, 10, 179.5), at(engine, -10, -179.5), at(engine, 0, 0)
    across = (170.0, -20.0, -170.0, 20.0)
    assert {v.id for v in queries.observations(engine, "field", bbox=across)} == {east, west}
    assert {v.id for v in queries.observations(engine, "field", bbox=across, public_places=True)} == {east, west}
    assert {v.id for v in queries.observations(engine, "field", bbox=(-1, -1, 1, 1))} == {greenwich}
    parsed = parse(engine, bbox="170,-20,-170,20")
    assert {v.id for v in queries.observations(engine, "field", filters=parsed)} == {east, west}


def test_queries_take_the_parsed_filters_with_the_old_keywords(engine):
    three, five = survey(engine, count=3), survey(engine, count=5)
    submit(engine)
    chosen = parse(engine, **{"field.count>": "3"})
    assert [v.id for v in queries.observations(engine, "field", filters=chosen)] == [three, five]
    assert [v.id for v in queries.observations(engine, "field", filters=chosen, exclude_id=three)] == [five]
    assert [v.id for v in queries.observations(engine, "field", kind="generic", filters=chosen)] == []


def test_public_places_leave_private_out_and_generalise_obscured(engine):
    open_ = at(engine, 41.3912340, 2.1712340)
    obscured = at(engine, 41.3912340, 2.1712340, location_privacy="obscured")
    at(engine, 41.3912340, 2.1712340, location_privacy="private")
    views = {v.id: v for v in queries.observations(engine, "field", public_places=True)}
    assert set(views) == {open_, obscured}
    assert (views[open_].location.lat, views[open_].location.lon) == (41.39, 2.17)
    assert (views[obscured].location.lat, views[obscured].location.lon) == (41.4, 2.2)
    assert len(queries.observations(engine, "field")) == 3  # plugins' exact view keeps every one
    # the public place filters test the obscured cell: the cell's centre matches, the exact place's box does not
    exact_box = parse(engine, bbox="2.171,41.391,2.172,41.392")
    assert {v.id for v in queries.observations(engine, "field", filters=exact_box, public_places=True)} == set()
    cell = parse(engine, bbox="2.19,41.39,2.21,41.41")
    assert {v.id for v in queries.observations(engine, "field", filters=cell, public_places=True)} == {obscured}
