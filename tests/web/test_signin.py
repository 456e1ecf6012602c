"""Signing in to the console through its form, the console's first page, and signing out:
real accounts (argon2id passwords), real sessions in signed cookies, the engine's attempt limits."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.engine import Engine
from core.testing import submit
from core.web.session import SESSION_COOKIE
from tests.web.conftest import PASSWORD, make_staff


def form_csrf(html: str) -> str:
    """The CSRF token a page's form carries."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in_with(client: TestClient, email: str, password: str, next_path: str = "/console") -> Any:
    page = client.get("/console/sign-in", params={"next": next_path})
    assert page.status_code == 200
    return client.post("/console/sign-in", data={"csrf": form_csrf(page.text), "email": email,
                                                 "password": password, "next": next_path},
                       follow_redirects=False)


@pytest.fixture
def web(app: FastAPI) -> Any:
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def test_the_sign_in_form_has_labelled_fields_and_a_csrf_token(web: TestClient) -> None:
    page = web.get("/console/sign-in")
    assert page.status_code == 200
    assert '<label for="email">E-mail</label>' in page.text and '<label for="password">Password</label>' in page.text
    assert ">Sign in</button>" in page.text and form_csrf(page.text)


def test_a_wrong_password_is_a_clear_401_page_and_signs_nobody_in(engine: Engine, web: TestClient) -> None:
    staff = make_staff(engine, "Ada", "ada@example.org", project="alpha")
    answer = sign_in_with(web, staff.email, "not the password at all")
    assert answer.status_code == 401 and "Wrong e-mail or password." in answer.text
    assert SESSION_COOKIE not in answer.cookies
    assert 'value="ada@example.org"' in answer.text  # the e-mail stays typed, the password does not
    unknown = sign_in_with(web, "nobody@example.org", "not the password at all")
    assert unknown.status_code == 401 and "Wrong e-mail or password." in unknown.text
    assert web.get("/console", follow_redirects=False).status_code == 303


def test_an_empty_form_says_what_is_missing(web: TestClient) -> None:
    page = web.get("/console/sign-in")
    answer = web.post("/console/sign-in", data={"csrf": form_csrf(page.text), "email": "", "password": ""})
    assert answer.status_code == 422 and "Enter your e-mail and your password." in answer.text


def test_too_many_attempts_is_a_429_page_saying_how_long_to_wait(make_engine: Any) -> None:
    from core.api.app import create_app

    engine = make_engine(sign_in_max_failures=2, sign_in_window_s=600)
    staff = make_staff(engine, "Ada", "ada@example.org", project="alpha")
    with TestClient(create_app(engine), raise_server_exceptions=False) as web:
        for _ in range(2):
            assert sign_in_with(web, staff.email, "wrong password here").status_code == 401
        refused = sign_in_with(web, staff.email, PASSWORD)  # even the right password waits
        assert refused.status_code == 429 and 0 < int(refused.headers["retry-after"]) <= 601
        assert "Too many failed sign-ins. Wait 10 minutes and try again." in refused.text
        assert SESSION_COOKIE not in refused.cookies


def test_signing_in_goes_to_next_shows_the_projects_and_signing_out_ends_the_session(
        engine: Engine, web: TestClient) -> None:
    staff = make_staff(engine, "Ada", "ada@example.org", project="alpha", role="moderator")
    for _ in range(3):
        submit(engine, "alpha")
    answer = sign_in_with(web, staff.email, PASSWORD, next_path="/console/projects/alpha/observations")
    assert answer.status_code == 303 and answer.headers["location"] == "/console/projects/alpha/observations"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    home = web.get("/console")
    assert home.status_code == 200 and ">Alpha</a>" in home.text and "Moderator" in home.text
    assert "Beta" not in home.text  # not a project of this account
    assert 'aria-label="Pending observations of Alpha: 3"' in home.text
    stolen = web.cookies.get(SESSION_COOKIE)
    out = web.post("/console/sign-out", data={"csrf": form_csrf(home.text)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in?signed_out=1"
    assert web.get(out.headers["location"]).text.count("You have signed out.") == 1
    # the cookie, kept by someone, no longer works: the session's token was revoked
    web.cookies.set(SESSION_COOKIE, stolen)
    again = web.get("/console", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/console/sign-in?next=")


def test_next_never_leaves_the_site(engine: Engine, web: TestClient) -> None:
    staff = make_staff(engine, "Ada", "ada@example.org", project="alpha")
    answer = sign_in_with(web, staff.email, PASSWORD, next_path="https://evil.example/steal")
    assert answer.status_code == 303 and answer.headers["location"] == "/console"


def test_a_sign_in_or_sign_out_without_the_csrf_token_changes_nothing(engine: Engine, web: TestClient) -> None:
    staff = make_staff(engine, "Ada", "ada@example.org", project="alpha")
    web.get("/console/sign-in")
    refused = web.post("/console/sign-in", data={"email": staff.email, "password": PASSWORD}, follow_redirects=False)
    assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies
    assert sign_in_with(web, staff.email, PASSWORD).status_code == 303
    forged = web.post("/console/sign-out", data={"csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert web.get("/console").status_code == 200  # still signed in


def test_an_account_without_a_staff_role_is_told_so(engine: Engine, web: TestClient) -> None:
    staff = make_staff(engine, "Cy", "cy@example.org", project="alpha", role="contributor")
    assert sign_in_with(web, staff.email, PASSWORD).status_code == 303
    home = web.get("/console")
    assert home.status_code == 200 and "not a moderator or administrator of any project" in home.text


def test_an_operator_sees_every_project(engine: Engine, web: TestClient) -> None:
    staff = make_staff(engine, "Op", "op@example.org", operator=True)
    assert sign_in_with(web, staff.email, PASSWORD).status_code == 303
    home = web.get("/console")
    assert ">Alpha</a>" in home.text and ">Beta</a>" in home.text and "Operator" in home.text


def test_a_forged_cookie_is_sent_to_sign_in(web: TestClient) -> None:
    web.cookies.set(SESSION_COOKIE, "eyJ0IjoieCIsImkiOjEsImMiOiJ5In0.forged")
    answer = web.get("/console", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in?next=%2Fconsole"


def test_the_sign_in_page_in_spanish(web: TestClient) -> None:
    page = web.get("/console/sign-in", headers={"Accept-Language": "es-ES,es;q=0.9"})
    assert 'lang="es"' in page.text and "Iniciar sesión" in page.text and "Correo electrónico" in page.text
