"""A page is bounded in bytes as well as in rows: large fields end a page early, and its cursor
goes on without a gap or a repeat (core.api.paging)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from core.api.app import create_app
from core.moderation import moderate
from core.tokens import create_token
from tests.api.conftest import API_REGISTRY, bearer
from tests.conftest import draft

API = "/api/v1"


def _walk(client: TestClient, url: str, token: str, cursor_name: str = "cursor", **params: object) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        query = {**params, **({cursor_name: cursor} if cursor else {})}
        body = client.get(url, params=query, headers=bearer(token)).json()
        assert "items" in body, body
        pages.append([item["id"] for item in body["items"]])
        cursor = body["next_cursor"]
        if not cursor:
            return pages


def test_large_fields_end_a_list_page_early_and_the_cursor_goes_on(make_engine):
    engine = make_engine(API_REGISTRY, max_page_bytes=10_000)
    operator = create_token(engine, "operator").token
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        made = []
        for i in range(9):  # 4 KB of fields each: two fit in 10 KB, not three
            body = client.post(f"{API}/projects/alpha/observations", headers=bearer(operator),
                               json=draft(fields={"note": f"{i}" + "x" * 4000})).json()
            made.append(body["id"])
        small = client.post(f"{API}/projects/alpha/observations", headers=bearer(operator), json=draft()).json()
        pages = _walk(client, f"{API}/projects/alpha/observations", operator, limit=50)
    assert pages[0] == [small["id"], made[-1], made[-2]]  # the small one, then two large ones fit
    assert all(len(page) <= 3 for page in pages)
    assert [i for page in pages for i in page] == sorted([small["id"], *made], reverse=True)  # no gap, no repeat


def test_one_row_larger_than_the_budget_still_makes_a_page(make_engine):
    engine = make_engine(API_REGISTRY, max_page_bytes=100)
    operator = create_token(engine, "operator").token
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        ids = [client.post(f"{API}/projects/alpha/observations", headers=bearer(operator),
                           json=draft(fields={"note": "y" * 500})).json()["id"] for _ in range(3)]
        pages = _walk(client, f"{API}/projects/alpha/observations", operator)
        assert pages == [[i] for i in sorted(ids, reverse=True)]
        for i in ids:  # edits write audit entries holding the fields twice
            moderate(engine, i, "publish", actor="test")
            assert client.patch(f"{API}/observations/{i}", headers=bearer(operator),
                                json={"fields": {"note": "z" * 500}}).status_code == 200
        audit = _walk(client, f"{API}/projects/alpha/audit", operator, cursor_name="before_id")
    assert all(len(page) == 1 for page in audit) and len(audit) == 6  # a publish and an edit each
