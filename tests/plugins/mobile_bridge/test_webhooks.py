"""Webhooks (``plugins/mobile_bridge/webhooks.py``, ``webhook_delivery.py``), received by a real
HTTP server on loopback that checks each signature: signed entries, retries with back-off, a
delivery log the owner reads, and disabling after repeated failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from core.api.app import create_app
from core.engine import Engine
from core.testing import draft
from core.worker import InlineDispatcher
from plugins.mobile_bridge import webhook_delivery
from tests.support.mobile_feed import API, MOBILE, People
from tests.support.mobile_feed import built_model, engine, people, plugins, registry  # noqa: F401
from tests.support.serving import HOST, free_port
from tests.support.waiting import wait_until


class Receiver:
    """An app's server: records each request (headers, body, when) and answers ``answers`` in
    turn (the last one from then on)."""

    def __init__(self, answers: list[int] | None = None, latency_s: float = 0.0):
        self.answers = list(answers or [200])
        self.requests: list[tuple[dict[str, str], bytes, float]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(latency_s)  # a slow receiver: senders overlap
                with receiver.lock:
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body,
                                              time.monotonic()))
                    status = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self) -> int:
        with self.lock:
            return len(self.requests)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    made: list[Receiver] = []

    def start(answers: list[int] | None = None, latency_s: float = 0.0) -> Receiver:
        one = Receiver(answers, latency_s)
        one.thread.start()
        made.append(one)
        return one

    yield start  # type: ignore[misc]
    for one in made:
        one.server.shutdown()
        one.server.server_close()


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What an app's server does: check the signature and that it is recent."""
    parts = dict(p.split("=", 1) for p in headers["x-observatory-signature"].split(","))
    if abs(time.time() - int(parts["t"])) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def _register(client: TestClient, people: People, who: str, url: str, events: list[str] | None = None) -> dict:
    body: dict[str, Any] = {"url": url}
    if events is not None:
        body["events"] = events
    response = client.post(f"{MOBILE}/webhooks", json=body, headers=people.auth(who))
    assert response.status_code == 201, response.text
    return response.json()


def _submit(client: TestClient, people: People, who: str) -> dict[str, Any]:
    response = client.post(f"{API}/projects/wild/observations", json=draft(), headers=people.auth(who))
    assert response.status_code == 201, response.text
    return response.json()


def _log(client: TestClient, people: People, who: str, webhook_id: int) -> list[dict[str, Any]]:
    response = client.get(f"{MOBILE}/webhooks/{webhook_id}/deliveries", headers=people.auth(who))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _webhook(client: TestClient, people: People, who: str, webhook_id: int) -> dict[str, Any]:
    response = client.get(f"{MOBILE}/webhooks/{webhook_id}", headers=people.auth(who))
    assert response.status_code == 200, response.text
    return response.json()


def test_each_entry_arrives_signed_and_the_owner_reads_the_delivery_log(client, people, receiver):
    people.add("ana", wild="contributor")
    app_server = receiver()
    hook = _register(client, people, "ana", app_server.url)
    assert hook["secret"].startswith("whsec_") and hook["enabled"] and hook["events"][0] == "results"
    listed = client.get(f"{MOBILE}/webhooks", headers=people.auth("ana")).json()["items"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]

    obs = _submit(client, people, "ana")
    wait_until(lambda: app_server.count() == 1, 10, "the delivery")
    [(headers, body, _)] = app_server.requests
    assert verified(hook["secret"], headers, body)
    assert not verified(hook["secret"], headers, body.replace(b"needs_id", b"research"))  # tampered
    assert headers["x-observatory-event"] == "results"
    [entry] = client.get(f"{MOBILE}/feed", headers=people.auth("ana")).json()["items"]
    sent = json.loads(body)
    assert sent == {**{k: v for k, v in entry.items() if k != "seen"}, "account_id": people.ids["ana"]}
    assert sent["observation_id"] == obs["id"]

    [delivery] = wait_until(lambda: [d for d in _log(client, people, "ana", hook["id"]) if d["status"] == "delivered"],
                            10, "the log to show the delivery")
    assert str(delivery["id"]) == headers["x-observatory-delivery"]
    assert (delivery["feed_id"], delivery["event"], delivery["attempts"]) == (entry["id"], "results", 1)
    assert [(a["status_code"], a["error"]) for a in delivery["log"]] == [(200, None)]


def test_a_webhook_gets_only_the_events_it_asked_for(client, people, receiver):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    app_server = receiver()
    _register(client, people, "ana", app_server.url, events=["comment"])
    obs = _submit(client, people, "ana")
    client.post(f"{API}/observations/{obs['id']}/comments", json={"body": "Seen it too"}, headers=people.auth("ben"))
    wait_until(lambda: app_server.count() == 1, 10, "the comment's delivery")
    [(headers, body, _)] = app_server.requests
    assert headers["x-observatory-event"] == "comment" and json.loads(body)["data"]["body"] == "Seen it too"


def test_a_failed_delivery_is_tried_again_later_and_later_until_it_arrives(engine, client, people, receiver):
    webhook_delivery.policy(engine).first_retry_s = 0.2
    people.add("ana", wild="contributor")
    app_server = receiver([500, 502, 200])
    hook = _register(client, people, "ana", app_server.url)
    _submit(client, people, "ana")
    [delivery] = wait_until(lambda: [d for d in _log(client, people, "ana", hook["id"]) if d["status"] == "delivered"],
                            20, "the third attempt to arrive")
    assert [(a["attempt"], a["status_code"]) for a in delivery["log"]] == [(1, 500), (2, 502), (3, 200)]
    assert delivery["log"][0]["error"] == "HTTP 500 from the receiver"
    times = [at for _, _, at in app_server.requests]
    assert times[1] - times[0] >= 0.2 and times[2] - times[1] >= 0.4  # waits of 1, 2 ... units
    assert {h["x-observatory-delivery"] for h, _, _ in app_server.requests} == {str(delivery["id"])}
    assert _webhook(client, people, "ana", hook["id"])["consecutive_failures"] == 0


def test_by_default_a_failed_delivery_waits_a_minute(client, people, receiver):
    people.add("ana", wild="contributor")
    hook = _register(client, people, "ana", receiver([500]).url)
    _submit(client, people, "ana")
    [delivery] = wait_until(lambda: [d for d in _log(client, people, "ana", hook["id"]) if d["attempts"] == 1],
                            10, "the first attempt")
    assert delivery["status"] == "pending"
    waited = datetime.fromisoformat(delivery["next_attempt_at"]) - datetime.fromisoformat(delivery["log"][0]["at"])
    assert 59 <= waited.total_seconds() <= 61


def test_ten_failures_in_a_row_disable_the_webhook_with_the_reason_until_it_is_enabled(engine, client, people,
                                                                                      receiver):
    webhook_delivery.policy(engine).first_retry_s = 0.01
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    app_server = receiver([503])
    hook = _register(client, people, "ana", app_server.url)
    obs = _submit(client, people, "ana")
    disabled = wait_until(lambda: (h := _webhook(client, people, "ana", hook["id"]))["enabled"] is False and h,
                          30, "the webhook to be disabled")
    assert disabled["disabled_reason"].startswith("disabled after 10 failed delivery attempts in a row")
    assert disabled["disabled_reason"].endswith("HTTP 503 from the receiver")
    assert app_server.count() == 10
    [delivery] = _log(client, people, "ana", hook["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 10)

    client.post(f"{API}/observations/{obs['id']}/comments", json={"body": "while disabled"}, headers=people.auth("ben"))
    assert len(_log(client, people, "ana", hook["id"])) == 1  # nothing queued for a disabled webhook

    app_server.answers = [200]
    enabled = client.post(f"{MOBILE}/webhooks/{hook['id']}/enable", headers=people.auth("ana"))
    assert enabled.status_code == 200 and enabled.json()["enabled"] and enabled.json()["disabled_reason"] is None
    client.post(f"{API}/observations/{obs['id']}/comments", json={"body": "after"}, headers=people.auth("ben"))
    wait_until(lambda: app_server.count() == 11, 10, "the delivery after enabling")
    assert json.loads(app_server.requests[-1][1])["data"]["body"] == "after"


def test_a_receiver_that_does_not_listen_is_logged_as_such(client, people):
    people.add("ana", wild="contributor")
    hook = _register(client, people, "ana", f"http://{HOST}:{free_port()}/hook")
    _submit(client, people, "ana")
    [delivery] = wait_until(lambda: [d for d in _log(client, people, "ana", hook["id"]) if d["attempts"]],
                            10, "the first attempt")
    [attempt] = delivery["log"]
    assert attempt["status_code"] is None and attempt["error"].startswith("could not connect: ConnectError")


def test_in_the_test_environment_nothing_is_sent_off_this_machine(client, people):
    people.add("ana", wild="contributor")
    hook = _register(client, people, "ana", "https://app.example.org/hook")
    _submit(client, people, "ana")
    [delivery] = wait_until(lambda: [d for d in _log(client, people, "ana", hook["id"]) if d["attempts"]],
                            10, "the first attempt")
    assert delivery["log"][0]["error"].startswith("not sent: in the test environment")


def test_two_senders_never_deliver_one_entry_twice(engine, client, people, receiver):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    app_server = receiver(latency_s=0.02)
    hook = _register(client, people, "ana", app_server.url, events=["comment"])
    obs = _submit(client, people, "ana")
    other = Engine.start(engine.settings, dispatcher=InlineDispatcher())  # another process's sender
    try:
        with TestClient(create_app(other)) as elsewhere:
            for n in range(12):
                (client if n % 2 else elsewhere).post(f"{API}/observations/{obs['id']}/comments",
                                                      json={"body": f"comment {n}"}, headers=people.auth("ben"))
                webhook_delivery.wake(other)
        wait_until(lambda: len([d for d in _log(client, people, "ana", hook["id"]) if d["status"] == "delivered"]) == 12,
                   20, "every delivery")
    finally:
        other.close()
    ids = [h["x-observatory-delivery"] for h, _, _ in app_server.requests]
    assert len(ids) == len(set(ids)) == 12
    assert sorted(json.loads(b)["data"]["body"] for _, b, _ in app_server.requests) == \
        sorted(f"comment {n}" for n in range(12))


def test_webhooks_are_the_owners_alone_and_their_urls_are_checked(client, people, receiver):
    people.add("ana", wild="contributor")
    people.add("ben", wild="contributor")
    hook = _register(client, people, "ana", receiver().url)
    for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/deliveries"), ("POST", "/enable")):
        theirs = client.request(method, f"{MOBILE}/webhooks/{hook['id']}{path}", headers=people.auth("ben"))
        assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "webhook_not_found", (method, path)
        assert client.request(method, f"{MOBILE}/webhooks/{hook['id']}{path}").status_code == 401
    assert client.get(f"{MOBILE}/webhooks", headers=people.auth("ben")).json() == {"items": []}

    for url in ("http://app.example.org/hook", "https://user:pw@app.example.org/hook", "https://10.1.2.3/hook",
                "https://[fe80::1]/hook", "https://app.example.org:99999/hook"):
        refused = client.post(f"{MOBILE}/webhooks", json={"url": url}, headers=people.auth("ben"))
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_webhook_url", url

    assert client.delete(f"{MOBILE}/webhooks/{hook['id']}", headers=people.auth("ana")).status_code == 204
    assert client.get(f"{MOBILE}/webhooks/{hook['id']}", headers=people.auth("ana")).status_code == 404


def test_an_account_has_at_most_ten_webhooks(client, people, receiver):
    people.add("ana", wild="contributor")
    url = receiver().url
    for _ in range(10):
        _register(client, people, "ana", url)
    eleventh = client.post(f"{MOBILE}/webhooks", json={"url": url}, headers=people.auth("ana"))
    assert eleventh.status_code == 409 and eleventh.json()["error"]["code"] == "too_many_webhooks"
