"""Odour events kept in memory and brought up to date incrementally (plugins/odour/event_store.py):
the same events as a detection over every report, after arrivals, edits and removals in any
order; pages that list each event once; and over HTTP, a cache that follows what other
processes write (new reports, moderation) and answers pages with a cursor."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from core import lifecycle
from core.api.app import create_app
from core.moderation import moderate
from core.tokens import create_token
from plugins.odour import event_store, service
from plugins.odour.event_store import EventIndex, Row, Rule
from plugins.odour.events import detect_events
from plugins.odour.reports import Report
from tests.plugins.odour.test_odour_plugin import ODOUR_REGISTRY, odour_draft

API = "/api/v1"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
RULE = Rule(window_s=4 * 3600.0, distance_m=2000.0, min_contributors=2, statuses=("published",), digits=None)


def _row(i: int, rng: random.Random) -> Row:
    moment = T0 + timedelta(minutes=rng.uniform(0, 3 * 24 * 60))
    return Row(i, rng.choice((5, 5, 2)), moment.timestamp(), 41.40 + rng.uniform(-0.05, 0.05),
               2.20 + rng.uniform(-0.05, 0.05), rng.choice((None, 1, 2, 3, 4, 5, 6)), rng.randint(1, 6),
               rng.randint(-4, 4), moment)


def _expected(rows: dict[int, Row]) -> tuple[set[frozenset[int]], set[int]]:
    reports = [Report(r.id, r.contributor, r.category, r.observed_at, r.lat, r.lon, r.intensity, r.hedonic)
               for r in sorted(rows.values(), key=lambda r: (r.t, r.id))]
    detection = detect_events(reports, window=RULE.window_s, distance_m=RULE.distance_m)
    return detection.groups(), set(detection.possible)


def _listed(index: EventIndex, limit: int | None = None) -> tuple[list[dict], list[int]]:
    events, possible, cursor = [], [], None
    while True:
        page = index.page(since=None, until=None, category=None, cursor=cursor, limit=limit, possible_max=None)
        events += page["events"]
        possible += page["possible"]
        cursor = page["next"]
        if cursor is None:
            return events, possible


@pytest.mark.parametrize("seed", range(4))
def test_incremental_events_equal_a_full_detection_after_any_changes(seed):
    rng = random.Random(seed)
    index = EventIndex(RULE)
    rows: dict[int, Row] = {}
    initial = [_row(i, rng) for i in range(120)]
    index.build(initial)
    rows.update({r.id: r for r in initial})
    next_id = 1000
    for step in range(150):
        action = rng.random()
        if action < 0.5 or not rows:
            row = _row(next_id, rng)
            next_id += 1
        elif action < 0.75:  # an edit: moved in time and place
            row = _row(rng.choice(list(rows)), rng)
        else:
            gone = rng.choice(list(rows))
            index.remove(gone)
            del rows[gone]
            row = None
        if row is not None:
            index.add(row)
            rows[row.id] = row
        if step % 25 == 0 or step == 149:
            groups, possible = _expected(rows)
            events, listed_possible = _listed(index, limit=rng.choice((None, 1, 3, 7)))
            assert {frozenset(e["report_ids"]) for e in events} == groups
            assert sorted(listed_possible) == sorted(possible), "each possible report listed once"
            assert [e["id"] for e in events] == list(range(1, len(events) + 1))
            starts = [(e["start"], e["category"], e["report_ids"][0]) for e in events]
            assert starts == sorted(starts)


def test_a_window_lists_the_events_that_overlap_it():
    index = EventIndex(RULE)
    rows = [Row(i, 5, (T0 + timedelta(hours=h)).timestamp(), 41.4, 2.2, c, 3, -2, T0 + timedelta(hours=h))
            for i, (h, c) in enumerate([(0, 1), (3, 2), (6, 3), (30, 1), (31, 2)])]
    index.build(rows)
    since, until = (T0 + timedelta(hours=5)).timestamp(), (T0 + timedelta(hours=30)).timestamp()
    page = index.page(since=since, until=until, category=None, cursor=None, limit=None, possible_max=None)
    assert [e["report_ids"] for e in page["events"]] == [[0, 1, 2]], "the event that began before since"
    assert page["n_reports"] == 1
    assert index.page(since=None, until=None, category=2, cursor=None, limit=None, possible_max=None)["events"] == []


# --------------------------------------------------------------------------- over HTTP, with a database


@pytest.fixture
def engine(make_engine):
    return make_engine(ODOUR_REGISTRY)


def _submit(engine, who: int, k: int, hours: float, lat: float = 41.401, category: int = 5) -> int:
    subtype = 53 if category == 5 else 11
    report = Report(k, None, category, T0 + timedelta(hours=hours), lat, 2.201, 3, -3, subtype=subtype, duration=1)
    return lifecycle.submit(engine, "smells", odour_draft(report), contributor_id=who).observation_id


def test_event_pages_follow_new_reports_moderation_and_edits(engine):
    people = [create_token(engine, "contributor", "smells", f"p{i}").contributor_id for i in range(3)]
    with TestClient(create_app(engine)) as client:
        ids = []
        for day in range(5):  # five events, one a day, two people each
            ids.append(_submit(engine, people[0], 2 * day, 24 * day))
            ids.append(_submit(engine, people[1], 2 * day + 1, 24 * day + 1))
        url = f"{API}/projects/smells/odour/events"
        first = client.get(url, params={"limit": 2})
        assert first.status_code == 200
        body = first.json()
        assert [e["id"] for e in body["events"]] == [1, 2] and body["next_cursor"]
        assert first.headers["X-Next-Cursor"] == body["next_cursor"]
        seen = [e["report_ids"] for e in body["events"]]
        while body["next_cursor"]:
            body = client.get(url, params={"limit": 2, "cursor": body["next_cursor"]}).json()
            seen += [e["report_ids"] for e in body["events"]]
        assert seen == [ids[2 * d: 2 * d + 2] for d in range(5)]

        # a lone report is possible; a second person turns it into an event on the next request
        lone = _submit(engine, people[0], 100, 24 * 10)
        assert lone in client.get(url).json()["possible"]
        other = _submit(engine, people[2], 101, 24 * 10 + 2)
        assert client.get(url).json()["events"][-1]["report_ids"] == [lone, other]
        # a moderator unpublishes a report (another process would do it the same way: the database
        # changes, and the next request sees the new version of the project)
        moderate(engine, other, "unpublish", actor="test")
        after = client.get(url).json()
        assert [lone] == [i for i in after["possible"] if i == lone] and len(after["events"]) == 5
        staff = create_token(engine, "operator", None, "op").token
        as_staff = client.get(url, headers={"Authorization": f"Bearer {staff}"}).json()
        assert as_staff["events"][-1]["report_ids"] == [lone, other], "staff still see it"
        # an edit makes a report another odour: it leaves its event, which was two people
        lifecycle.update_fields(engine, ids[0], {"category": 2, "subtype": 11}, actor="test")
        edited = client.get(url).json()
        assert ids[:2] not in [e["report_ids"] for e in edited["events"]]
        assert {ids[0], ids[1]} <= set(edited["possible"]) and edited["events"][0]["id"] == 1

        bad = client.get(url, params={"cursor": "not-a-cursor"})
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"
        assert client.get(url, params={"limit": event_store.PAGE_MAX + 1}).status_code == 422


def test_the_cache_answers_without_reading_the_reports_again(engine, monkeypatch):
    people = [create_token(engine, "contributor", "smells", f"p{i}").contributor_id for i in range(2)]
    for k in range(6):
        _submit(engine, people[k % 2], k, k)
    project = engine.registry.project("smells")
    service.events(engine, project, public=True)
    loads = []
    original = EventIndex._load
    monkeypatch.setattr(EventIndex, "_load", lambda self, *a: (loads.append(1), original(self, *a))[1])
    added = []
    original_add = EventIndex.add
    monkeypatch.setattr(EventIndex, "add", lambda self, row: (added.append(row.id), original_add(self, row))[1])
    for _ in range(3):
        service.events(engine, project, public=True)
    assert loads == [] and added == [], "nothing changed: answered from memory"
    new = _submit(engine, people[0], 50, 2.5)
    payload = service.events(engine, project, public=True)
    assert loads == [] and new in added, "only what changed was read"
    assert any(new in e["report_ids"] for e in payload["events"])
