"""Sign-up from a phone, devices (device tokens) and pairing a second device with a one-time code.

- ``POST /api/v1/mobile/projects/{slug}/signup`` (no token): an account, a contributor
  membership, the person's consents and licence choice, and a device token, shown once.
- ``GET /api/v1/mobile/devices``, ``DELETE /api/v1/mobile/devices/{id}``: the caller's account's
  devices; revoking one stops its token at once.
- ``POST /api/v1/mobile/pairing-codes`` (a device token): a code of 8 characters from an alphabet
  without look-alikes, valid 10 minutes, used once, kept only as a hash;
  ``POST /api/v1/mobile/projects/{slug}/pair`` with it: a token for a second device of the same
  account. Wrong codes are counted per address: past ``PAIR_MAX_FAILURES`` in
  ``PAIR_WINDOW``, 429 until the window has passed.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Integer, String, Table, UniqueConstraint, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from core import consent
from core.accounts import DISPLAY_NAME_PATTERN, EMAIL_PATTERN, create_account
from core.api.contract import TOKEN_REQUIRED_EXTRA
from core.api.deps import DbInt, EngineDep, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.schemas import error_responses
from core.db.models import ApiToken, Membership, UTCDateTime, utcnow
from core.engine import Engine
from core.tokens import create_account_token, list_tokens, revoke_token
from core.types import ProjectContext
from plugins.mobile_bridge.db import metadata
from plugins.mobile_bridge.projects import bridge_project, bridge_settings

router = APIRouter(prefix="/api/v1/mobile", tags=["mobile"])

CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"  # no 0/O, 1/I/L: read aloud or typed from another screen
CODE_LENGTH = 8
CODE_LIFETIME = timedelta(minutes=10)
PAIR_MAX_FAILURES = 10
PAIR_WINDOW = timedelta(minutes=15)
DEVICE_ROLE = "contributor"

PROFILES = Table(
    "mobile_profiles", metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, nullable=False),
    Column("project", String(64), nullable=False),
    Column("licence", String(32), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("account_id", "project", name="uq_mobile_profile"),
)
"""What a person chose at sign-up in a project: the licence of their observations."""

PAIRING_CODES = Table(
    "mobile_pairing_codes", metadata,
    Column("id", Integer, primary_key=True),
    Column("code_hash", String(64), nullable=False, unique=True),
    Column("account_id", Integer, nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
)

PAIRING_FAILURES = Table(
    "mobile_pairing_failures", metadata,
    Column("id", Integer, primary_key=True),
    Column("address", String(64), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False, index=True),
)

# -- shapes ----------------------------------------------------------------------------------------


class ConsentAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choice: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$",
                        description="a choice of GET .../form's consent_choices")
    version: str = Field(min_length=1, max_length=32, description="the version of the text the person was shown")
    agreed: bool


class SignupIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "display_name": "Ana", "email": "ana@example.org", "licence": "CC-BY-4.0",
        "consents": [{"choice": "newsletter", "version": "1", "agreed": False}], "device_name": "Ana's phone"}]})

    display_name: str = Field(min_length=1, max_length=200, pattern=DISPLAY_NAME_PATTERN)
    email: str | None = Field(None, max_length=320, pattern=EMAIL_PATTERN,
                              description="required where the project requires an e-mail or allows no pseudonyms")
    licence: str | None = Field(None, max_length=32, description="one of the project's licences, for the person's "
                                "observations (the project's default when left out)")
    consents: list[ConsentAnswer] = Field(default_factory=list, max_length=20)
    device_name: str = Field(min_length=1, max_length=100, pattern=DISPLAY_NAME_PATTERN)


class SignupConsentOut(BaseModel):
    choice: str
    version: str
    agreed: bool


class DeviceTokenOut(BaseModel):
    account_id: int
    device_id: int = Field(description="the device (its token's id): DELETE /api/v1/mobile/devices/{id} revokes it")
    token: str = Field(description="the device's bearer token; shown this once, only its hash is kept")
    device_name: str
    project: str


class SignupOut(DeviceTokenOut):
    display_name: str
    email: str | None
    licence: str
    consents: list[SignupConsentOut]


class DeviceOut(BaseModel):
    id: int
    name: str
    project: str | None
    created_at: datetime
    revoked: bool
    current: bool = Field(description="the device whose token made this request")


class DeviceList(BaseModel):
    items: list[DeviceOut]


class PairingCodeOut(BaseModel):
    code: str = Field(examples=["K7M2QX9P"], description=f"{CODE_LENGTH} characters of {CODE_ALPHABET}; "
                      "one use, within its expiry")
    expires_at: datetime


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"code": "K7M2-QX9P", "device_name": "Ana's tablet"}]})

    code: str = Field(min_length=CODE_LENGTH, max_length=20, description="as shown; spaces, dashes and case do not "
                      "matter")
    device_name: str = Field(min_length=1, max_length=100, pattern=DISPLAY_NAME_PATTERN)


# -- sign-up ---------------------------------------------------------------------------------------


def _check_signup(project: ProjectContext, body: SignupIn) -> str:
    """Refuse before anything is stored; the licence the person chose."""
    settings = bridge_settings(project)
    if body.email is None and settings.get("require_email", False):
        raise ApiError(422, "email_required", f"project {project.slug!r} requires an e-mail address to sign up")
    if body.email is None and not settings.get("allow_pseudonymous", True):
        raise ApiError(422, "email_required", f"project {project.slug!r} allows no pseudonymous accounts: "
                       "give an e-mail address")
    licence = body.licence or project.licence
    if licence not in project.licences:
        raise ApiError(422, "unknown_licence", f"{licence!r} is not a licence of project {project.slug!r}; one of "
                       f"{', '.join(project.licences)}")
    for answer in body.consents:
        current = consent.choice_of(project, answer.choice)
        if answer.version != current.version:
            raise ApiError(422, "consent_version_outdated", f"the current version of {answer.choice!r} in "
                           f"{project.slug!r} is {current.version!r}, not {answer.version!r}")
    return licence


def sign_up(engine: Engine, project: ProjectContext, body: SignupIn) -> dict[str, Any]:
    """The account, its contributor membership, consents, licence choice and a device token."""
    licence = _check_signup(project, body)
    account = create_account(engine, body.display_name, email=body.email, memberships={project.slug: DEVICE_ROLE})
    answers = [a for a in body.consents]
    if not any(a.choice == consent.LICENCE for a in answers):  # signing up is agreeing to the project's licence
        answers.insert(0, ConsentAnswer(choice=consent.LICENCE, version=project.licence_version, agreed=True))
    for answer in answers:
        consent.record(engine, account.id, project, answer.choice, answer.version, answer.agreed)
    insert = pg_insert if engine.db.dialect.name == "postgresql" else sqlite_insert
    with engine.db.begin() as conn:
        conn.execute(insert(PROFILES).values(account_id=account.id, project=project.slug, licence=licence,
                                             created_at=utcnow())
                     .on_conflict_do_update(index_elements=["account_id", "project"], set_={"licence": licence}))
    token = create_account_token(engine, account.id, project=project.slug, role=DEVICE_ROLE, name=body.device_name,
                                 kind="device")
    return {"account_id": account.id, "device_id": token.id, "token": token.token, "device_name": body.device_name,
            "project": project.slug, "display_name": account.display_name, "email": account.email,
            "licence": licence, "consents": [a.model_dump() for a in answers]}


def chosen_licence(engine: Engine, account_id: int, project: str) -> str | None:
    """The licence the person chose for their observations at sign-up in ``project`` (None: none chosen)."""
    with engine.readers() as session:
        return session.scalar(select(PROFILES.c.licence).where(PROFILES.c.account_id == account_id,
                                                               PROFILES.c.project == project))


@router.post(
    "/projects/{slug}/signup", status_code=201, response_model=SignupOut, summary="Sign up from an app",
    description="Makes an account (a contributor of the project), records the person's consents (each at the "
    "current version of its text, GET .../form) and the licence chosen for their observations, and answers a "
    "device token, shown this once. 422 `email_required` where the project requires an e-mail or allows no "
    "pseudonymous accounts; 409 `email_taken` for an e-mail already used.",
    responses=error_responses(401, 404, 409, 422, 429),
)
def post_signup(slug: str, body: SignupIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    project = bridge_project(engine, slug)
    return sign_up(engine, project, body)


def forget_account(engine: Engine, account_id: int) -> None:
    """Delete what sign-up and pairing keep of an account (its licence choice, its pairing codes):
    for an erasure (its tokens are the engine's)."""
    with engine.db.begin() as conn:
        conn.execute(delete(PROFILES).where(PROFILES.c.account_id == account_id))
        conn.execute(delete(PAIRING_CODES).where(PAIRING_CODES.c.account_id == account_id))


# -- devices ---------------------------------------------------------------------------------------


def devices_of(engine: Engine, account_id: int, current_token: int | None) -> list[dict[str, Any]]:
    return [{"id": t["id"], "name": t["name"], "project": t["project"], "created_at": t["created_at"],
             "revoked": t["revoked"], "current": t["id"] == current_token}
            for t in list_tokens(engine, account_id) if t["kind"] == "device"]


@router.get("/devices", response_model=DeviceList, summary="Your devices",
            description="The devices (device tokens) of the caller's account, revoked ones included.",
            responses=error_responses(401, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def get_devices(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "listing devices")
    assert principal.account_id is not None
    return {"items": devices_of(engine, principal.account_id, principal.token_id)}


@router.delete("/devices/{device_id}", status_code=204, summary="Revoke a device",
               description="Its token stops working at once. Only the caller's own account's devices (others: 404).",
               responses=error_responses(401, 404, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def delete_device(device_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> None:
    if principal.anonymous:
        raise deny(principal, "revoking devices")
    with engine.readers() as session:
        owned = session.scalar(select(ApiToken.id).where(ApiToken.id == device_id, ApiToken.kind == "device",
                                                         ApiToken.account_id == principal.account_id))
    if owned is None:
        raise ApiError(404, "device_not_found", f"you have no device {device_id}")
    revoke_token(engine, device_id)


# -- pairing ---------------------------------------------------------------------------------------


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def normalise_code(text: str) -> str:
    return "".join(c for c in text.upper() if c not in " -")


def new_pairing_code(engine: Engine, account_id: int) -> tuple[str, datetime]:
    now = utcnow()
    expires = now + CODE_LIFETIME
    with engine.db.begin() as conn:  # the expired and used codes go on the way
        conn.execute(delete(PAIRING_CODES).where(PAIRING_CODES.c.expires_at < now - CODE_LIFETIME))
    for _attempt in range(5):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        try:
            with engine.db.begin() as conn:
                conn.execute(PAIRING_CODES.insert().values(code_hash=code_hash(code), account_id=account_id,
                                                           created_at=now, expires_at=expires))
            return code, expires
        except IntegrityError:  # the same code live already: another one
            continue
    raise ApiError(503, "unavailable", "no free pairing code was found; try again")


def _is_device(engine: Engine, token_id: int | None) -> bool:
    with engine.readers() as session:
        return session.scalar(select(ApiToken.kind).where(ApiToken.id == token_id)) == "device"


@router.post("/pairing-codes", status_code=201, response_model=PairingCodeOut, summary="A code to add a device",
             description=f"From a device token: a one-time code, valid {CODE_LIFETIME.seconds // 60} minutes, that "
             "another device of the same person sends to POST .../projects/{slug}/pair.",
             responses=error_responses(401, 403, 429), openapi_extra=TOKEN_REQUIRED_EXTRA)
def post_pairing_code(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "making a pairing code")
    if not _is_device(engine, principal.token_id):
        raise ApiError(403, "device_token_required", "a pairing code is made from a device already signed up "
                       "(its device token), not with another kind of token")
    assert principal.account_id is not None
    code, expires = new_pairing_code(engine, principal.account_id)
    return {"code": code, "expires_at": expires}


def _refuse_if_limited(engine: Engine, address: str) -> None:
    now = utcnow()
    with engine.db.begin() as conn:
        conn.execute(delete(PAIRING_FAILURES).where(PAIRING_FAILURES.c.at < now - PAIR_WINDOW))
        count, oldest = conn.execute(select(func.count(), func.min(PAIRING_FAILURES.c.at)).where(
            PAIRING_FAILURES.c.address == address)).one()
    if count >= PAIR_MAX_FAILURES and oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=now.tzinfo)
        wait = max(1, int((oldest + PAIR_WINDOW - now).total_seconds()) + 1)
        raise ApiError(429, "too_many_attempts", f"too many wrong pairing codes from this address; try again in "
                       f"{wait} s", {"Retry-After": str(wait)})


def _failed(engine: Engine, address: str) -> ApiError:
    with engine.db.begin() as conn:
        conn.execute(PAIRING_FAILURES.insert().values(address=address, at=utcnow()))
    return ApiError(404, "invalid_pairing_code", "this pairing code is unknown, used or expired: make a new one on "
                    "the first device")


def pair(engine: Engine, project: ProjectContext, code: str, device_name: str, address: str) -> dict[str, Any]:
    """Use a pairing code once: a device token of the code's account in ``project``."""
    address = address[:64]
    _refuse_if_limited(engine, address)
    now, c = utcnow(), PAIRING_CODES.c
    with engine.db.begin() as conn:
        found = conn.execute(select(c.id, c.account_id).where(
            c.code_hash == code_hash(normalise_code(code)), c.used_at.is_(None), c.expires_at > now)).first()
        member = found is not None and conn.execute(select(Membership.id).where(
            Membership.account_id == found.account_id, Membership.project == project.slug)).first() is not None
        claimed = member and conn.execute(update(PAIRING_CODES).where(c.id == found.id, c.used_at.is_(None))
                                          .values(used_at=now)).rowcount == 1
    if found is None or (member and not claimed):
        raise _failed(engine, address)
    if not member:
        raise ApiError(403, "not_a_member", f"the person of this code has not signed up to project "
                       f"{project.slug!r}: sign up there, or pair in a project they joined")
    token = create_account_token(engine, found.account_id, project=project.slug, role=DEVICE_ROLE, name=device_name,
                                 kind="device")
    return {"account_id": found.account_id, "device_id": token.id, "token": token.token, "device_name": device_name,
            "project": project.slug}


@router.post("/projects/{slug}/pair", status_code=201, response_model=DeviceTokenOut,
             summary="Add a device with a pairing code",
             description="The code from POST /api/v1/mobile/pairing-codes on the person's first device: a device "
             "token for the same account, shown this once. A wrong, used or expired code answers 404 "
             f"`invalid_pairing_code`; after {PAIR_MAX_FAILURES} wrong codes from one address in "
             f"{PAIR_WINDOW.seconds // 60} minutes, 429.",
             responses=error_responses(401, 403, 404, 422, 429))
def post_pair(slug: str, body: PairIn, request: Request, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    project = bridge_project(engine, slug)
    address = request.client.host if request.client else "?"
    return pair(engine, project, body.code, body.device_name, address)

