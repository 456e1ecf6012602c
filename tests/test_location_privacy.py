"""Location privacy per observation (``core.privacy``): what the public is shown of an open, an
obscured and a private place, and the SQL form of the same rule that filters test, bit for bit
the values shown (on SQLite and PostgreSQL)."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import select

from core import lifecycle
from core.db.models import Observation
from core.db.session import transaction
from core.errors import ValidationFailed
from core.place_filter import bbox_where, visible_place
from core.privacy import obscured_digits, public_location, public_location_dict, snap
from core.tokens import create_token
from core.types import Location
from tests.conftest import BASE_REGISTRY, draft

REGISTRY = BASE_REGISTRY + """
  - slug: places
    name: Places
    auto_publish: true
    location_precision: 3
    obscured_precision: 1
    licences: [CC0-1.0, CC-BY-NC-4.0]
  - slug: hidden
    name: Hidden by default
    default_location_privacy: private
"""
EXACT = Location(41.391234, 2.171234, 5.0)


@pytest.fixture
def engine(make_engine):
    return make_engine(REGISTRY)


def test_open_places_are_on_the_project_grid_obscured_on_their_cell_private_nowhere(engine):
    project = engine.registry.project("places")
    open_place = public_location(EXACT, project, "open")
    assert (open_place.lat, open_place.lon) == (41.391, 2.171) and open_place.accuracy_m == pytest.approx(111)
    obscured = public_location(EXACT, project, "obscured")
    assert (obscured.lat, obscured.lon) == (41.4, 2.2)
    assert obscured.accuracy_m == pytest.approx(11_100), "the accuracy says the place is only known to the cell"
    assert public_location(EXACT, project, "private") is None
    assert public_location(EXACT, project, "something else") is None, "an unknown privacy shows no place"
    assert public_location(EXACT, project) == open_place, "open is the default"


def test_the_dict_form_says_whether_the_place_was_generalised(engine):
    project = engine.registry.project("places")
    place = {"lat": EXACT.lat, "lon": EXACT.lon, "accuracy_m": 5.0}
    assert public_location_dict(place, project, "open")["obscured"] is False
    shown = public_location_dict(place, project, "obscured")
    assert shown == {"lat": 41.4, "lon": 2.2, "accuracy_m": pytest.approx(11_100), "obscured": True}
    assert public_location_dict(place, project, "private") is None


def test_an_obscured_place_is_never_finer_than_an_open_one(engine):
    exact = engine.registry.project("alpha")  # open places exact, obscured on the default 1-decimal cell
    assert exact.location_precision is None and obscured_digits(exact) == 1
    assert public_location(EXACT, exact, "open") == EXACT
    assert (public_location(EXACT, exact, "obscured").lat, public_location(EXACT, exact, "obscured").lon) == (41.4, 2.2)


def test_a_draft_takes_its_privacy_and_licence_or_the_projects(engine):
    def stored(project: str, **parts) -> Observation:
        obs_id = lifecycle.submit(engine, project, draft(**parts)).observation_id
        with transaction(engine.readers) as session:
            obs = session.get(Observation, obs_id)
            session.expunge(obs)
            return obs

    chosen = stored("places", location_privacy="obscured", licence="CC0-1.0")
    assert (chosen.location_privacy, chosen.licence) == ("obscured", "CC0-1.0")
    default = stored("places")
    assert (default.location_privacy, default.licence) == ("open", "CC-BY-4.0")
    assert stored("hidden").location_privacy == "private"
    with pytest.raises(ValidationFailed) as refused:
        stored("places", licence="CC-BY-ND-4.0")
    (problem,) = refused.value.problems
    assert problem.path == ("licence",) and "CC0-1.0" in problem.message and "CC-BY-NC-4.0" in problem.message


def _points(n: int) -> list[tuple[float, float]]:
    """Places on and next to the cells' edges (x.x5, x.xxx5), negative and positive, and random ones."""
    rng = random.Random(7)
    edges = [(41.05, 2.15), (-0.05, -0.0005), (0.15, 179.9995), (-33.4495, -70.6505), (89.95, -179.96)]
    return edges + [(rng.uniform(-90, 90), rng.uniform(-180, 180)) for _ in range(n)]


def test_filters_test_each_row_where_the_public_is_shown_it_bit_for_bit(engine):
    project = engine.registry.project("places")
    stored: dict[int, tuple[str, Location]] = {}
    for i, (lat, lon) in enumerate(_points(40)):
        privacy = ("open", "obscured", "private")[i % 3]
        obs_id = lifecycle.submit(engine, "places", draft(location={"lat": lat, "lon": lon},
                                                          location_privacy=privacy)).observation_id
        stored[obs_id] = (privacy, Location(lat, lon))
    with transaction(engine.readers) as session:
        lat, lon = visible_place(project, staff=False)
        public = {row.id: (row.lat, row.lon) for row in session.execute(
            select(Observation.id, lat.label("lat"), lon.label("lon")).where(Observation.project == "places"))}
        lat, lon = visible_place(project, staff=True)
        staff = dict(session.execute(select(Observation.id, lat).where(Observation.project == "places")).all())
        everywhere = set(session.scalars(select(Observation.id).where(
            Observation.project == "places", bbox_where((-180, -90, 180, 90), *visible_place(project, staff=False)))))
    for obs_id, (privacy, exact) in stored.items():
        shown = public_location(exact, project, privacy)
        if shown is None:
            assert public[obs_id] == (None, None), "a private place is NULL in SQL"
            assert obs_id not in everywhere, "no place filter, not even the whole globe, matches a private place"
        else:
            assert public[obs_id] == (shown.lat, shown.lon), (privacy, exact)  # ==: the same doubles
            assert obs_id in everywhere
        assert staff[obs_id] == exact.lat
    # the caller's own observations: exact, whatever their privacy
    owner = create_token(engine, "contributor", "places", "owner").contributor_id
    own_id = lifecycle.submit(engine, "places", draft(location={"lat": EXACT.lat, "lon": EXACT.lon},
                                                      location_privacy="private"), [], owner).observation_id
    with transaction(engine.readers) as session:
        for who, expected in ((owner, EXACT.lat), (owner + 1, None)):
            lat, _ = visible_place(project, staff=False, contributor_id=who)
            assert session.execute(select(lat).where(Observation.id == own_id)).scalar_one() == expected


def test_snapping_in_python_is_the_documented_rule():
    assert snap(41.391234, 1) == 41.4 and snap(-41.391234, 1) == -41.4 and snap(0.25, 1) == 0.3
    assert snap(41.391234, None) == 41.391234
