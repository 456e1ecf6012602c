"""The in-memory index of a project's photo hashes: incremental, and never stale where it matters."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.db.models import Enrichment, Observation, utcnow
from core.engine import Engine
from plugins.species_id.catalogue import SERVICE
from plugins.species_id import hash_index
from plugins.species_id.hash_index import Match, ProjectHashes, project_index

BASE = 0x0F0F_0F0F_0F0F_0F0F


def near(bits: int) -> str:
    """A hash ``bits`` bits away from BASE."""
    return f"{BASE ^ ((1 << bits) - 1):016x}"


@pytest.fixture
def engine(make_engine, monkeypatch) -> Engine:
    monkeypatch.setattr(hash_index, "REFRESH_EVERY_S", 0.0)  # every check reads what changed
    return make_engine()


class Photos:
    """Observations of project alpha with species_id enrichments, written as a worker would."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.clock = utcnow()

    def add(self, *hashes: str, status: str = "done", project: str = "alpha") -> int:
        self.clock += timedelta(seconds=1)
        with self.engine.db.begin() as conn:
            obs_id = conn.execute(sa.insert(Observation.__table__).values(
                project=project, content_hash="x", kind="generic", observed_at=self.clock, lat=41.0, lon=2.0,
                fields={}, status="pending", created_at=self.clock, updated_at=self.clock)).inserted_primary_key[0]
            conn.execute(sa.insert(Enrichment.__table__).values(
                observation_id=obs_id, plugin=SERVICE, status=status, attempts=1, updated_at=self.clock,
                finished_at=self.clock if status == "done" else None, result={"dhashes": list(hashes)}))
        return obs_id

    def finish(self, obs_id: int, *hashes: str, status: str = "done") -> None:
        """The enrichment of ``obs_id`` ends (again) now, with these hashes."""
        self.clock += timedelta(seconds=1)
        with self.engine.db.begin() as conn:
            conn.execute(sa.update(Enrichment.__table__).where(Enrichment.observation_id == obs_id).values(
                status=status, updated_at=self.clock, finished_at=self.clock if status == "done" else None,
                result={"dhashes": list(hashes)}))

    def set_status(self, obs_id: int, status: str) -> None:
        with self.engine.db.begin() as conn:
            conn.execute(sa.update(Observation.__table__).where(Observation.id == obs_id).values(status=status))


@pytest.fixture
def photos(engine: Engine) -> Photos:
    return Photos(engine)


def test_the_nearest_earlier_photo_within_the_distance_is_found(engine, photos):
    far = photos.add(near(20))
    two = photos.add(near(9), near(2))
    four = photos.add(near(4))
    photos.add(near(2), project="beta")  # another project's photos are not compared
    new = photos.add(near(0))
    index = project_index(engine.sessions, "alpha")
    assert index.nearest(near(0), new, 5) == Match(two, 1, 2)
    assert index.nearest(near(0), new, 1) is None
    assert index.nearest(near(0), four, 5) == Match(two, 1, 2), "only earlier observations"
    assert index.nearest(near(0), two, 5) is None
    assert index.nearest(near(0), new, 64).observation_id == two
    assert far < two and len(index) == 5, "every photo of alpha, none of beta"


def test_ties_go_to_the_oldest_photo(engine, photos):
    first, second = photos.add(near(3)), photos.add(near(3))
    new = photos.add(near(0))
    assert project_index(engine.sessions, "alpha").nearest(near(0), new, 5) == Match(first, 0, 3)
    assert second > first


def test_a_refresh_reads_only_what_changed_and_finds_it(engine, photos):
    for _ in range(20):
        photos.add(near(30))
    index = project_index(engine.sessions, "alpha")
    assert len(index) == 20
    late = photos.add(near(1))
    new = photos.add(near(0))
    assert index.refresh() == 22, "20 rows again through the overlap at most, plus the 2 new ones"
    assert index.nearest(near(0), new, 5) == Match(late, 0, 1)
    assert len(index) == 22, "rows read again through the overlap are not added twice"


def test_an_enrichment_that_ends_late_is_found(engine, photos):
    slow = photos.add(near(1), status="running")  # an earlier observation, still being identified
    index = project_index(engine.sessions, "alpha")
    new = photos.add(near(0))
    assert index.nearest(near(0), new, 5) is None
    photos.finish(slow, near(1))
    assert project_index(engine.sessions, "alpha").nearest(near(0), new, 5) == Match(slow, 0, 1)


def test_trashed_or_requeued_observations_are_left_out(engine, photos):
    trashed, requeued, kept = photos.add(near(1)), photos.add(near(2)), photos.add(near(3))
    new = photos.add(near(0))
    index = project_index(engine.sessions, "alpha")
    assert index.nearest(near(0), new, 5).observation_id == trashed
    photos.set_status(trashed, "trashed")
    assert index.nearest(near(0), new, 5).observation_id == requeued
    photos.finish(requeued, near(2), status="pending")  # edited: its identification runs again
    assert index.nearest(near(0), new, 5) == Match(kept, 0, 3)


def test_a_photo_replaced_by_an_edit_no_longer_matches(engine, photos):
    edited = photos.add(near(1))
    new = photos.add(near(0))
    index = project_index(engine.sessions, "alpha")
    assert index.nearest(near(0), new, 5) == Match(edited, 0, 1)
    photos.finish(edited, near(40))
    assert project_index(engine.sessions, "alpha").nearest(near(0), new, 5) is None
    assert project_index(engine.sessions, "alpha").nearest(near(40), new, 0) == Match(edited, 0, 0)


def test_checks_within_a_second_share_one_read(engine, photos, monkeypatch):
    monkeypatch.setattr(hash_index, "REFRESH_EVERY_S", 60.0)
    far = photos.add(near(3))
    index = project_index(engine.sessions, "alpha")
    closer = photos.add(near(1))
    new = photos.add(near(0))
    again = project_index(engine.sessions, "alpha")
    assert again is index and again.nearest(near(0), new, 5) == Match(far, 0, 3), "not read again yet"
    index.refreshed_at -= 61
    assert project_index(engine.sessions, "alpha").nearest(near(0), new, 5) == Match(closer, 0, 1)


def test_a_photo_changed_since_the_last_read_is_checked_against_its_current_hash(engine, photos, monkeypatch):
    monkeypatch.setattr(hash_index, "REFRESH_EVERY_S", 60.0)
    changed, other = photos.add(near(1)), photos.add(near(3))
    new = photos.add(near(0))
    index = project_index(engine.sessions, "alpha")
    photos.finish(changed, near(50))  # not read yet: the arrays still hold near(1)
    assert index.nearest(near(0), new, 5) == Match(other, 0, 3)


def test_a_done_row_without_an_end_time_is_still_read(engine, photos):
    photos.add(near(30))
    legacy = photos.add(near(1))
    with engine.db.begin() as conn:
        conn.execute(sa.update(Enrichment.__table__).where(Enrichment.observation_id == legacy).values(finished_at=None))
    new = photos.add(near(0))
    assert project_index(engine.sessions, "alpha").nearest(near(0), new, 5) == Match(legacy, 0, 1)


def test_an_empty_project_has_no_match(engine):
    index = ProjectHashes(engine.sessions, "alpha")
    assert index.refresh() == 0 and len(index) == 0
    assert index.nearest(near(0), 10**9, 64) is None
