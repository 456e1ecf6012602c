"""A person's data: the download (API and CLI) and erasure, end to end.

Erin contributes to alpha (erasure: anonymise) and delta (erasure: delete), moderates delta,
comments, and agrees to be named; Olga contributes to both, once with the same photo as Erin.
After Erin's erasure no output of the engine (observation API and list, the staff CSV export,
the audit API, the comments API, Olga's own download) names Erin, by name, e-mail or id.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from core import gdpr
from core.db.models import (Account, ApiToken, AuditEntry, Comment, Consent, MediaBlob, Membership, Observation,
                            SignInFailure)
from core.engine import Engine
from core.export import export
from core.tokens import create_account_token, create_token
from tests.api.conftest import app, client  # noqa: F401  (fixtures, on this module's engine)
from tests.conftest import BASE_REGISTRY, draft

REGISTRY = BASE_REGISTRY + """
  - slug: delta
    name: Delta
    erasure: delete
    auto_publish: true
    services: {}
"""
API = "/api/v1"
NAME = "Erin Erasable-7f3"
EMAIL = "erin.erasable@example.org"


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine(REGISTRY)


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass
class World:
    erin_id: int
    erin: str
    olga: str
    operator: str
    alpha_obs: list[int]
    delta_obs: list[int]
    olga_delta: int
    olga_alpha: int
    shas: dict[str, str]


def _submit(client: TestClient, token: str, project: str, photo: tuple[str, bytes] | None = None,
            **parts: Any) -> int:
    body = draft(**parts)
    if photo:
        response = client.post(f"{API}/projects/{project}/observations", data={"draft": json.dumps(body)},
                               files=[("media", (photo[0], photo[1], "image/jpeg"))], headers=bearer(token))
    else:
        response = client.post(f"{API}/projects/{project}/observations", json=body, headers=bearer(token))
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.fixture
def world(engine: Engine, client: TestClient, photos: dict[str, bytes]) -> World:
    erin_account = create_token(engine, "contributor", "alpha", NAME).account_id
    with engine.sessions.begin() as session:
        session.execute(update(Account).where(Account.id == erin_account).values(email=EMAIL, password_hash="$argon2id$x"))
        session.add(Membership(account_id=erin_account, project="delta", role="moderator"))
        session.add(SignInFailure(account_id=erin_account, address="203.0.113.7"))
    erin = create_account_token(engine, erin_account, name="erin's phone").token
    create_token(engine, "contributor", "alpha", "Olga Other")
    with engine.sessions.begin() as session:
        olga_id = session.scalar(select(Account.id).where(Account.display_name == "Olga Other"))
        session.add(Membership(account_id=olga_id, project="delta", role="contributor"))
    olga_all = create_account_token(engine, olga_id, name="olga everywhere").token
    operator = create_token(engine, "operator", None, "Op").token

    chelsea, coffee, astronaut = photos["chelsea.jpg"], photos["coffee.jpg"], photos["astronaut.jpg"]
    a1 = _submit(client, erin, "alpha", ("erin_garden.jpg", chelsea), client_id="erin-phone-1",
                 location={"lat": 41.123456, "lon": 2.654321, "accuracy_m": 3})
    a2 = _submit(client, erin, "alpha", fields={"note": "a second one"})
    d1 = _submit(client, erin, "delta", ("mine.jpg", coffee))
    d2 = _submit(client, erin, "delta", ("shared.jpg", astronaut))
    olga_delta = _submit(client, olga_all, "delta", ("same_bytes.jpg", astronaut))
    olga_alpha = _submit(client, olga_all, "alpha")
    assert client.patch(f"{API}/observations/{a1}", json={"fields": {"note": "edited by Erin"}},
                        headers=bearer(erin)).status_code == 200
    for obs in (a1, olga_alpha):
        assert client.post(f"{API}/observations/{obs}/moderation", json={"action": "publish"},
                           headers=bearer(operator)).status_code == 200
    # Erin moderates delta: she unpublishes and republishes Olga's observation there
    for action in ("unpublish", "publish"):
        assert client.post(f"{API}/observations/{olga_delta}/moderation", json={"action": action},
                           headers=bearer(erin)).status_code == 200
    assert client.post(f"{API}/observations/{olga_alpha}/comments", json={"body": "Nice one, Olga"},
                       headers=bearer(erin)).status_code == 201
    assert client.post(f"{API}/observations/{a1}/comments", json={"body": "Thanks for this"},
                       headers=bearer(olga_all)).status_code == 201
    assert client.post(f"{API}/me/consents", json={"project": "alpha", "choice": "attribution", "version": "1",
                                                   "agreed": True}, headers=bearer(erin)).status_code == 201
    with engine.sessions.begin() as session:  # as a plugin or a later change might record a person
        session.add(AuditEntry(project="alpha", observation_id=a2, actor="cli", action="reassign",
                               before={"contributor_id": erin_account, "display_name": NAME},
                               after={"contributor_id": olga_id, "contact": f"write to {EMAIL}"}))
    shas = {name: hashlib.sha256(data).hexdigest() for name, data in
            (("chelsea", chelsea), ("coffee", coffee), ("astronaut", astronaut))}
    return World(erin_account, erin, olga_all, operator, [a1, a2], [d1, d2], olga_delta, olga_alpha, shas)


def _zip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_a_person_downloads_everything_held_about_them(client, engine, world, photos):
    response = client.get(f"{API}/me/data", headers=bearer(world.erin))
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    files = _zip(response.content)
    account = json.loads(files["account.json"])
    assert (account["display_name"], account["email"], account["has_password"]) == (NAME, EMAIL, True)
    assert {(m["project"], m["role"]) for m in account["memberships"]} == {("alpha", "contributor"),
                                                                          ("delta", "moderator")}
    assert len(account["tokens"]) == 2 and account["failed_sign_ins"][0]["address"] == "203.0.113.7"
    with engine.sessions() as session:
        hashes = list(session.scalars(select(ApiToken.token_hash)))
    assert not any(h.encode() in files["account.json"] for h in hashes) and b"$argon2id" not in files["account.json"]

    observations = json.loads(files["observations.json"])
    assert [o["id"] for o in observations] == world.alpha_obs + world.delta_obs
    assert observations[0]["location"] == {"lat": 41.123456, "lon": 2.654321, "accuracy_m": 3.0}
    assert observations[0]["fields"] == {"note": "edited by Erin"} and observations[0]["client_id"] == "erin-phone-1"
    rows = list(csv.DictReader(io.StringIO(files["observations.csv"].decode())))
    assert [int(r["id"]) for r in rows] == world.alpha_obs + world.delta_obs
    assert (rows[0]["lat"], rows[0]["lon"]) == ("41.123456", "2.654321")
    for row, obs in zip(rows, observations):
        assert row["media"].split() == [m["file"] for m in obs["media"]]
        for name in row["media"].split():
            assert hashlib.sha256(files[name]).hexdigest() == name.split("/")[1].split(".")[0]
    assert files[observations[0]["media"][0]["file"]] == photos["chelsea.jpg"]

    assert [c["body"] for c in json.loads(files["comments.json"])] == ["Nice one, Olga"]
    assert [(c["choice"], c["agreed"]) for c in json.loads(files["consents.json"])] == [("attribution", True)]
    entries = json.loads(files["audit.json"])
    actions = {(e["action"], e["observation_id"]) for e in entries}
    assert ("unpublish", world.olga_delta) in actions  # what she did
    assert ("publish", world.alpha_obs[0]) in actions  # what was done to hers
    others = {e["actor"] for e in entries if not e["actor"].startswith("you: ")}
    assert others <= {gdpr.OTHER, "cli"}, others
    assert client.get(f"{API}/me/data").status_code == 401


def _mentions(text: str, erin_id: int) -> list[str]:
    """Where ``text`` names Erin: her name, her e-mail, or her id as an actor."""
    found = [what for what in (NAME, EMAIL, NAME.lower()) if what in text.lower() or what in text]
    if re.search(rf"account:{erin_id}(?![0-9])", text):
        found.append(f"account:{erin_id}")
    return found


def _ids_as_person(value: Any, erin_id: int, key: str | None = None) -> list[str]:
    """JSON keys that hold Erin's id as a person's (contributor, author, account)."""
    if isinstance(value, dict):
        return [k for k2, v in value.items() for k in _ids_as_person(v, erin_id, k2)]
    if isinstance(value, list):
        return [k for v in value for k in _ids_as_person(v, erin_id, key)]
    if key in gdpr.PERSON_KEYS and value == erin_id:
        return [key]
    return []


def _assert_erin_nowhere(outputs: dict[str, str], erin_id: int) -> None:
    for where, text in outputs.items():
        assert not _mentions(text, erin_id), (where, _mentions(text, erin_id))
        try:
            value = json.loads(text)
        except ValueError:
            continue
        assert not _ids_as_person(value, erin_id), where


def test_erasure_leaves_nothing_that_names_the_person(client, engine, world):
    refused = client.request("DELETE", f"{API}/me", json={"confirm": "yes"}, headers=bearer(world.erin))
    assert refused.status_code == 422 and "erase my account" in refused.json()["error"]["message"]
    assert client.request("DELETE", f"{API}/me", json={"confirm": "erase my account"}).status_code == 401

    erased = client.request("DELETE", f"{API}/me", json={"confirm": "erase my account"}, headers=bearer(world.erin))
    assert erased.status_code == 200, erased.text
    summary = erased.json()
    assert (summary["observations_anonymised"], summary["observations_deleted"], summary["tokens_deleted"],
            summary["comments_kept_without_author"], summary["media_files_deleted"]) == (2, 2, 2, 1, 1)
    # her token stops at once, although this process checked it a moment ago
    assert client.get(f"{API}/me/consents", headers=bearer(world.erin)).status_code == 401

    op = bearer(world.operator)
    # alpha: anonymised, still there, without any link to her
    for obs_id in world.alpha_obs:
        obs = client.get(f"{API}/observations/{obs_id}", headers=op).json()
        assert obs["contributor_id"] is None and obs["client_id"] is None
    first = client.get(f"{API}/observations/{world.alpha_obs[0]}", headers=op).json()
    assert client.get(first["media"][0]["url"], headers=op).status_code == 200
    # delta: deleted; the photo only she had is gone from the disk, the shared one stays for Olga
    for obs_id in world.delta_obs:
        assert client.get(f"{API}/observations/{obs_id}", headers=op).status_code == 404
    assert not engine.media.path_for(world.shas["coffee"]).exists()
    assert engine.media.path_for(world.shas["astronaut"]).exists()
    assert engine.media.path_for(world.shas["chelsea"]).exists()
    olgas = client.get(f"{API}/observations/{world.olga_delta}", headers=bearer(world.olga)).json()
    assert client.get(olgas["media"][0]["url"], headers=bearer(world.olga)).status_code == 200

    with engine.sessions() as session:
        assert session.get(Account, world.erin_id) is None
        for model in (ApiToken, Membership, Consent, SignInFailure):
            assert session.scalar(select(func.count()).select_from(model)
                                  .where(model.account_id == world.erin_id)) == 0, model
        assert session.scalar(select(func.count()).select_from(Observation)
                              .where(Observation.contributor_id == world.erin_id)) == 0
        assert session.get(MediaBlob, world.shas["coffee"]) is None
        kept = session.scalars(select(Comment).where(Comment.body == "Nice one, Olga")).one()
        assert kept.account_id is None

    outputs: dict[str, str] = {}
    for project in ("alpha", "delta"):
        outputs[f"list {project}"] = client.get(f"{API}/projects/{project}/observations", headers=op).text
        outputs[f"public list {project}"] = client.get(f"{API}/projects/{project}/observations").text
        outputs[f"audit {project}"] = client.get(f"{API}/projects/{project}/audit", headers=op).text
        outputs[f"comments {project}"] = client.get(f"{API}/projects/{project}/comments", headers=op).text
        outputs[f"csv {project}"] = "".join(export(engine, engine.registry.project(project), "csv", public=False))
        outputs[f"api csv {project}"] = client.get(f"{API}/projects/{project}/export", params={"scope": "all"},
                                                   headers=op).text
    for obs_id in (*world.alpha_obs, world.olga_alpha, world.olga_delta):
        outputs[f"observation {obs_id}"] = client.get(f"{API}/observations/{obs_id}", headers=op).text
        outputs[f"comments {obs_id}"] = client.get(f"{API}/observations/{obs_id}/comments", headers=op).text
    olga_zip = _zip(client.get(f"{API}/me/data", headers=bearer(world.olga)).content)
    outputs.update({f"olga's {name}": data.decode("utf-8", "replace") for name, data in olga_zip.items()
                    if not name.startswith("media/")})
    _assert_erin_nowhere(outputs, world.erin_id)

    for project in ("alpha", "delta"):
        rows = list(csv.DictReader(io.StringIO(outputs[f"csv {project}"])))
        assert str(world.erin_id) not in {r["contributor_id"] for r in rows}
    audit = json.loads(outputs["audit alpha"])["items"]
    assert {e["actor"] for e in audit if e["observation_id"] == world.alpha_obs[0] and e["action"] != "publish"} \
        == {gdpr.ERASED}  # her submit and her edit
    reassign = next(e for e in audit if e["action"] == "reassign")
    assert reassign["before"] == {"contributor_id": None, "display_name": gdpr.ERASED}
    assert reassign["after"]["contributor_id"] is not None  # Olga's stays
    erasures = [e for e in audit if e["action"] == "erase_account"]
    assert [(e["actor"], e["observation_id"], e["after"]["observations_anonymised"]) for e in erasures] == [
        (gdpr.ERASED, None, 2)]
    delta_erasure = next(e for e in json.loads(outputs["audit delta"])["items"] if e["action"] == "erase_account")
    assert delta_erasure["after"]["observations_deleted"] == 2
    olga_audit = json.loads(olga_zip["audit.json"])
    assert {e["actor"] for e in olga_audit if e["action"] == "unpublish"} == {gdpr.ERASED}
    comment = json.loads(outputs[f"comments {world.olga_alpha}"])["items"][0]
    assert (comment["body"], comment["author"], comment["author_id"]) == ("Nice one, Olga", None, None)


def test_operators_export_and_erase_from_the_command_line(engine, world, tmp_path):
    from core.cli import build_cli

    runner = CliRunner()
    out = tmp_path / "erin.zip"
    result = runner.invoke(build_cli(), ["gdpr", "export", str(world.erin_id), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(_zip(out.read_bytes())["account.json"])["email"] == EMAIL
    missing = runner.invoke(build_cli(), ["gdpr", "export", "999999", "--out", str(tmp_path / "none.zip")])
    assert missing.exit_code == 1 and "no account 999999" in missing.stderr
    assert not (tmp_path / "none.zip").exists() and not (tmp_path / "none.zip.part").exists()

    declined = runner.invoke(build_cli(), ["gdpr", "erase", str(world.erin_id)], input="n\n")
    assert declined.exit_code != 0
    with engine.sessions() as session:
        assert session.get(Account, world.erin_id) is not None
    result = runner.invoke(build_cli(), ["gdpr", "erase", str(world.erin_id), "--yes"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["observations_deleted"] == 2
    with engine.sessions() as session:
        assert session.get(Account, world.erin_id) is None
        entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "erase_account")))
    assert {e.actor for e in entries} == {"cli"} and {e.project for e in entries} == {"alpha", "delta"}
    again = runner.invoke(build_cli(), ["gdpr", "erase", str(world.erin_id), "--yes"])
    assert again.exit_code == 1 and f"no account {world.erin_id}" in again.stderr
