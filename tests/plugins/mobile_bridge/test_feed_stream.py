"""The feed as Server-Sent Events (``plugins/mobile_bridge/feed_stream.py``), against a real
uvicorn on loopback with a streaming httpx client: a client that goes away and comes back with
``Last-Event-ID`` misses nothing and gets nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from core.api.app import create_app
from core.engine import Engine
from core.tokens import revoke_token
from core.worker import InlineDispatcher
from plugins.mobile_bridge import feed_stream
from tests.support.mobile_feed import API, MOBILE, LiveServer, People
from tests.support.mobile_feed import built_model, engine, live_server, people, plugins, registry  # noqa: F401
from tests.support.waiting import wait_until


class Stream:
    """An open event stream, read event by event (comments kept apart)."""

    def __init__(self, response: httpx.Response):
        self.response = response
        self.lines = response.iter_lines()
        self.comments: list[str] = []

    def next_event(self) -> dict[str, Any]:
        """The next event (a ReadTimeout fails the test when none comes)."""
        fields: dict[str, str] = {}
        for line in self.lines:
            if line == "":
                if "data" in fields:
                    return {"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])}
                continue
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        raise AssertionError("the stream ended")

    def events(self, n: int) -> list[dict[str, Any]]:
        return [self.next_event() for _ in range(n)]


@contextmanager
def stream(server: LiveServer, token: str, *, last_event_id: int | None = None,
           cursor: int | None = None) -> Iterator[Stream]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    params = {"cursor": cursor} if cursor is not None else {}
    with httpx.Client(base_url=server.base, timeout=httpx.Timeout(10.0)) as client:
        with client.stream("GET", f"{MOBILE}/feed/stream", headers=headers, params=params) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield Stream(response)


def _post(server: LiveServer, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(server.base + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _comment(server: LiveServer, people: People, who: str, obs_id: int, body: str) -> None:
    _post(server, f"{API}/observations/{obs_id}/comments", people.tokens[who], {"body": body})


def _no_stream_open(engine: Engine) -> None:
    wait_until(lambda: feed_stream.notifier(engine).listeners() == 0, 10, "the server to end the stream")


def test_a_client_that_reconnects_with_last_event_id_misses_nothing_and_gets_nothing_twice(
        engine, live_server, people):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    people.add("mo", wild="moderator")
    obs = _post(live_server, f"{API}/projects/wild/observations", people.tokens["ana"],
                {"observed_at": "2026-05-01T09:30:00+02:00", "location": {"lat": 41.39, "lon": 2.17}, "fields": {}})
    received: list[dict[str, Any]] = []

    with stream(live_server, people.tokens["ana"], cursor=0) as first:
        received += first.events(1)  # the results, from before it connected
        for n in range(2):
            _comment(live_server, people, "ben", obs["id"], f"live {n}")
        received += first.events(2)
    _no_stream_open(engine)  # the client went away: the server's stream ended

    for n in range(3):  # while the app is offline
        _comment(live_server, people, "ben", obs["id"], f"missed {n}")
    _post(live_server, f"{API}/observations/{obs['id']}/moderation", people.tokens["mo"], {"action": "unpublish"})

    with stream(live_server, people.tokens["ana"], last_event_id=received[-1]["id"]) as second:
        received += second.events(4)
        _comment(live_server, people, "mo", obs["id"], "after the reconnection")
        received += second.events(1)

    assert [e["event"] for e in received] == ["results", "comment", "comment", "comment", "comment", "comment",
                                              "moderation", "comment"]
    assert [e["data"]["data"]["body"] for e in received if e["event"] == "comment"] == [
        "live 0", "live 1", "missed 0", "missed 1", "missed 2", "after the reconnection"]
    feed = httpx.get(f"{live_server.base}{MOBILE}/feed", headers=people.auth("ana")).json()["items"]
    assert [e["id"] for e in received] == [e["id"] for e in feed]  # every entry once, in order
    assert [e["data"] for e in received] == feed  # data: the entry as GET /feed shows it
    assert all(e["id"] == e["data"]["id"] for e in received)


def test_entries_another_process_writes_reach_an_open_stream(engine, live_server, people):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    # a second engine on the same database stands for a worker process: it cannot wake this
    # process's streams, which find its entries by polling the table
    other = Engine.start(engine.settings, dispatcher=InlineDispatcher())
    try:
        with stream(live_server, people.tokens["ana"]) as events:
            from fastapi.testclient import TestClient

            with TestClient(create_app(other)) as elsewhere:
                created = elsewhere.post(f"{API}/projects/wild/observations", headers=people.auth("ana"),
                                         json={"observed_at": "2026-05-01T09:30:00+02:00",
                                               "location": {"lat": 41.39, "lon": 2.17}, "fields": {}})
                assert created.status_code == 201, created.text
            [event] = events.events(1)
            assert (event["event"], event["data"]["observation_id"]) == ("results", created.json()["id"])
    finally:
        other.close()


def test_without_last_event_id_the_stream_starts_with_what_comes_next(engine, live_server, people):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    obs = _post(live_server, f"{API}/projects/wild/observations", people.tokens["ana"],
                {"observed_at": "2026-05-01T09:30:00+02:00", "location": {"lat": 41.39, "lon": 2.17}, "fields": {}})
    with stream(live_server, people.tokens["ana"]) as events:
        _comment(live_server, people, "ben", obs["id"], "only this one")
        [event] = events.events(1)
    assert (event["event"], event["data"]["data"]["body"]) == ("comment", "only this one")


def test_an_idle_stream_sends_heartbeats_and_ends_when_its_token_is_revoked(engine, live_server, people,
                                                                            monkeypatch):
    monkeypatch.setattr(feed_stream, "HEARTBEAT_S", 0.3)
    people.add("ana", wild="contributor")
    with stream(live_server, people.tokens["ana"]) as events:
        while len(events.comments) < 2:  # each line within the client's read timeout, or it fails
            line = next(events.lines)
            if line.startswith(":"):
                events.comments.append(line)
        assert events.comments == [": heartbeat", ": heartbeat"]
        token_id = next(t["id"] for t in _tokens(engine, people.ids["ana"]))
        revoke_token(engine, token_id)
        with pytest.raises(AssertionError, match="the stream ended"):
            events.next_event()
    _no_stream_open(engine)


def _tokens(engine: Engine, account_id: int) -> list[dict[str, Any]]:
    from core.tokens import list_tokens

    return list_tokens(engine, account_id)


def test_the_stream_needs_a_token_and_a_numeric_last_event_id(live_server, people):
    people.add("ana", wild="contributor")
    anonymous = httpx.get(f"{live_server.base}{MOBILE}/feed/stream", timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "unauthorized"
    bad = httpx.get(f"{live_server.base}{MOBILE}/feed/stream", timeout=10,
                    headers={**people.auth("ana"), "Last-Event-ID": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["path"] == ["header", "Last-Event-ID"]
