"""The pages' common parts: assets served by the engine, the language choice, signed sessions
and CSRF, and no open redirect through the language switch."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from core.web.guards import require_csrf
from core.web.i18n import negotiate
from core.web.session import CSRF_COOKIE, SESSION_COOKIE, web_principal
from core.web.site import local_path
from core.web.templating import render


def test_leaflet_and_the_pages_styles_are_served_by_the_engine(client: Any) -> None:
    for path, kind in (("/assets/leaflet/leaflet.js", "javascript"), ("/assets/leaflet/leaflet.css", "css"),
                       ("/assets/markercluster/leaflet.markercluster.js", "javascript"),
                       ("/assets/markercluster/MarkerCluster.Default.css", "css"), ("/assets/web/web.css", "css")):
        answer = client.get(path)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], path
    assert client.get("/assets/leaflet/../../../../etc/passwd").status_code == 404


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": raw, "query_string": b""})


@pytest.mark.parametrize("headers, expected", [
    ({}, "en"),
    ({"Accept-Language": "es-ES,es;q=0.9,en;q=0.8"}, "es"),
    ({"Accept-Language": "fr-FR, es;q=0.5"}, "es"),
    ({"Accept-Language": "de, fr"}, "en"),
    ({"Accept-Language": "es;q=0.2, en;q=0.9"}, "en"),
    ({"Accept-Language": "es", "Cookie": "observatory_lang=en"}, "en"),
    ({"Accept-Language": "en", "Cookie": "observatory_lang=es"}, "es"),
    ({"Accept-Language": ";;q=x,,", "Cookie": "observatory_lang=xx"}, "en"),
])
def test_the_language_is_the_switch_then_the_browser_then_english(headers: dict[str, str], expected: str) -> None:
    assert negotiate(_request(headers)) == expected


def test_the_language_switch_sets_a_cookie_and_goes_back_only_to_this_site(client: Any) -> None:
    answer = client.get("/web/language", params={"to": "es", "next": "/map?kind=odour"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/map?kind=odour"
    assert "observatory_lang=es" in answer.headers["set-cookie"]
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        assert local_path(target) == "/console"


@pytest.fixture
def page_app(app: FastAPI) -> FastAPI:
    router = APIRouter(include_in_schema=False)

    @router.get("/test-page")
    async def show(request: Request) -> Response:
        return await render(request, "error.html", {"title": "T", "message": "M"})

    @router.post("/test-form")
    async def change(request: Request) -> Response:
        await require_csrf(request)
        principal = await web_principal(request)
        return PlainTextResponse(f"changed by {principal.role}")

    app.include_router(router)
    return app


def test_a_form_without_the_visitors_csrf_token_changes_nothing(page_app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    with TestClient(page_app) as client:
        page = client.get("/test-page", headers={"Accept-Language": "es"})
        assert page.status_code == 200 and "Volver a la consola" in page.text and 'lang="es"' in page.text
        cookie = page.cookies.get(CSRF_COOKIE)
        assert cookie and "httponly" in page.headers["set-cookie"].lower() and "samesite=lax" in page.headers["set-cookie"].lower()
        token = page.text.split('name="csrf" value="')[1].split('"')[0] if 'name="csrf"' in page.text else None
        assert token is None  # a visitor's error page has no form; the token is in the cookie only
        refused = client.post("/test-form", data={"csrf": "guess"})
        assert refused.status_code == 403 and "Form" in refused.text
        from core.web.session import _serializer  # the token the cookie carries, as a form would hold it
        real = _serializer(page_app.state.engine, "csrf").loads(cookie)
        assert client.post("/test-form", data={"csrf": real}).text == "changed by anonymous"
        assert client.post("/test-form", headers={"X-CSRF-Token": real}).text == "changed by anonymous"


def test_a_forged_session_cookie_is_nobody(page_app: FastAPI) -> None:
    from fastapi.testclient import TestClient

    with TestClient(page_app) as client:
        client.cookies.set(SESSION_COOKIE, "eyJ0IjoieCIsImkiOjEsImMiOiJ5In0.forged")
        assert client.post("/test-form", headers={"X-CSRF-Token": "y"}).status_code == 403
