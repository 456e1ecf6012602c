"""submit_many: a batch validated item by item, stored in one transaction, idempotent by client_id."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from core import lifecycle
from core.db.models import Enrichment, MediaBlob, Observation, ObservationMedia
from core.db.session import transaction
from core.lifecycle import Upload
from core.views import load_observation, observation_dict
from tests.conftest import draft


def count(engine, model=Observation) -> int:
    with transaction(engine.sessions) as s:
        return s.scalar(select(func.count()).select_from(model))


def show(engine, obs_id):
    with transaction(engine.sessions) as s:
        return observation_dict(load_observation(s, obs_id))


def batch(n: int, tag: str = "b") -> list[tuple[dict, list]]:
    return [(draft(client_id=f"{tag}-{i}", fields={"note": f"row {i}"}), []) for i in range(n)]


def test_good_items_are_stored_and_bad_ones_reported(engine, photos):
    items = batch(3)
    items.insert(1, (draft(location={"lat": 91, "lon": 2}), []))
    items.append((draft(kind="nonesuch"), []))
    items.append((draft(client_id="with-photo"), [Upload(photos["coffee.jpg"], "c.jpg", None)]))
    items.append((draft(), [Upload(b"not an image", "x.jpg", None)]))

    results = lifecycle.submit_many(engine, "alpha", items, actor="test")

    assert [r.status for r in results] == ["stored", "refused", "stored", "stored", "refused", "stored", "refused"]
    assert [r.index for r in results] == list(range(7))
    assert results[1].problems[0].path == ("location", "lat")
    assert results[4].problems[0].code == "unknown_kind"
    assert results[6].problems[0].path == ("media", 0)
    assert count(engine) == 4
    assert [show(engine, r.observation_id)["fields"]["note"] for r in results if r.created][:3] == [
        "row 0", "row 1", "row 2"]
    photo = show(engine, results[5].observation_id)
    assert photo["media"][0]["content_type"] == "image/jpeg"
    assert count(engine, MediaBlob) == 1 and count(engine, ObservationMedia) == 1


def test_enrichments_are_queued_after_the_commit(engine):
    results = lifecycle.submit_many(engine, "alpha", batch(3))
    assert count(engine, Enrichment) == 6  # recorder and flaky for each
    for r in results:
        obs = show(engine, r.observation_id)
        assert obs["enrichments"]["recorder"]["status"] == "done"
        assert obs["enrichments"]["recorder"]["result"] == {"seen": r.observation_id, "media": 0}
        assert obs["grade"] == "needs_id"


def test_a_retried_batch_stores_nothing_twice(engine):
    first = lifecycle.submit_many(engine, "alpha", batch(5))
    again = lifecycle.submit_many(engine, "alpha", batch(5))
    assert [r.status for r in again] == ["duplicate"] * 5
    assert [r.observation_id for r in again] == [r.observation_id for r in first]
    assert count(engine) == 5 and count(engine, Enrichment) == 10


def test_a_client_id_with_other_content_is_refused_alone(engine):
    lifecycle.submit_many(engine, "alpha", batch(2))
    items = batch(3)
    items[1] = (draft(client_id="b-1", fields={"note": "changed"}), [])
    results = lifecycle.submit_many(engine, "alpha", items)
    assert [r.status for r in results] == ["duplicate", "refused", "stored"]
    assert results[1].problems[0].code == "client_id_conflict"
    assert results[1].problems[0].path == ("client_id",)
    assert count(engine) == 3


def test_a_client_id_twice_in_one_batch(engine):
    items = [(draft(client_id="same"), []), (draft(client_id="same"), []),
             (draft(client_id="same", fields={"note": "other"}), [])]
    results = lifecycle.submit_many(engine, "alpha", items)
    assert [r.status for r in results] == ["stored", "duplicate", "refused"]
    assert results[1].observation_id == results[0].observation_id
    assert count(engine) == 1


def test_a_client_id_of_someone_else_is_a_conflict(engine):
    from core.tokens import create_token

    a = create_token(engine, "contributor", "alpha", "a").account_id
    b = create_token(engine, "contributor", "alpha", "b").account_id
    lifecycle.submit_many(engine, "alpha", batch(1), a)
    results = lifecycle.submit_many(engine, "alpha", batch(1), [b])
    assert results[0].problems[0].code == "client_id_conflict"


def test_contributors_and_source_contributors_per_item(engine):
    from core.tokens import create_token

    account = create_token(engine, "contributor", "alpha", "a").account_id
    results = lifecycle.submit_many(engine, "alpha", batch(2), [account, None],
                                    source_contributors=[None, "f" * 64])
    with transaction(engine.sessions) as s:
        rows = [s.get(Observation, r.observation_id) for r in results]
        assert [(o.contributor_id, o.source_contributor) for o in rows] == [(account, None), (None, "f" * 64)]


def test_licence_is_checked_as_in_submit(engine):
    results = lifecycle.submit_many(engine, "alpha", [(draft(licence="all-rights-reserved"), [])])
    assert results[0].problems[0].code == "unknown_licence"
    assert count(engine) == 0


def test_racing_batches_store_each_client_id_once(engine):
    results, errors = [], []
    barrier = threading.Barrier(4)

    def send():
        barrier.wait()
        try:
            results.append(lifecycle.submit_many(engine, "beta", batch(20, "race")))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert count(engine) == 20
    ids = {tuple(r.observation_id for r in answer) for answer in results}
    assert len(ids) == 1, "every batch answers the same stored ids"
    assert sum(r.created for answer in results for r in answer) == 20


def test_a_client_id_stored_by_another_writer_meanwhile_does_not_fail_the_batch(engine):
    """Another writer stores one of the batch's client ids between the batch's look-up and its insert."""
    from sqlalchemy import event

    raced = []

    def another_writer(conn, cursor, statement, parameters, context, executemany):
        if not raced and "FROM observations" in statement and "client_id IN" in statement:
            raced.append(lifecycle.submit(engine, "beta", draft(client_id="b-3", fields={"note": "row 3"})))

    event.listen(engine.db, "after_cursor_execute", another_writer)
    try:
        results = lifecycle.submit_many(engine, "beta", batch(6))
    finally:
        event.remove(engine.db, "after_cursor_execute", another_writer)
    assert raced, "the other writer ran"
    assert [r.status for r in results] == ["stored"] * 3 + ["duplicate"] + ["stored"] * 2
    assert results[3].observation_id == raced[0].observation_id
    assert count(engine) == 6
