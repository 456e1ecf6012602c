"""Accounts over the API: sign in and out, who am I, my tokens, project members, operators'
account management."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from core import accounts
from core.api.deps import DbInt, EngineDep, PrincipalDep, deny
from core.api.errors import ApiError
from core.api.schemas import error_responses
from core.lifecycle import get_project
from core.tokens import PROJECT_ROLES, create_account_token, list_tokens, lower_role, revoke_token

router = APIRouter(prefix="/api/v1", tags=["accounts"])
Role = Literal["admin", "moderator", "expert", "contributor"]


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"email": "admin@example.org", "password": "correct horse battery staple"}]})

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=accounts.MAX_PASSWORD)


class AccountOut(BaseModel):
    id: int
    display_name: str
    email: str | None
    is_operator: bool
    has_password: bool
    created_at: datetime
    last_seen_at: datetime | None
    memberships: dict[str, str] = Field(description="project -> role")


class SignInOut(BaseModel):
    token: str = Field(description="a session token: send it as 'Authorization: Bearer <token>'")
    token_id: int
    expires_at: datetime
    account: AccountOut


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"name": "field laptop", "project": "demo", "role": "contributor"}]})

    name: str = Field("", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    project: str | None = Field(None, max_length=64, description="the project the token is for (one of yours; "
                                "operators may leave it out)")
    role: Role | None = Field(None, description="narrow the token to at most this role (needs project)")


class TokenOut(BaseModel):
    id: int
    token: str = Field(description="shown once; only its hash is kept")
    project: str | None
    role: str | None


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "moderator"}]})

    role: Role


class MemberOut(BaseModel):
    id: int
    display_name: str
    email: str | None
    role: str
    last_seen_at: datetime | None


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"display_name": "Ada", "email": "ada@example.org", "memberships": {"demo": "admin"}}]})

    display_name: str = Field(min_length=1, max_length=200, pattern=accounts.DISPLAY_NAME_PATTERN)
    email: str | None = Field(None, max_length=320, pattern=accounts.EMAIL_PATTERN)
    operator: bool = False
    memberships: dict[Annotated[str, Field(max_length=64)], Role] = Field(default_factory=dict, max_length=100)


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


@router.post("/sign-in", response_model=SignInOut, summary="Sign in with an e-mail and a password",
             description="Staff sign in to the web with the password set by `observatory accounts set-password`. "
             "Answers a session token that expires (OBSERVATORY_SESSION_HOURS). The same 401 for an unknown "
             "e-mail and a wrong password; 429 with Retry-After after too many failures for the account or "
             "from the address.",
             responses={**error_responses(401, 422), 429: {"description": "too many failed attempts"}})
async def sign_in(body: SignInIn, request: Request, engine: EngineDep) -> Any:
    try:
        account, token, expires = await run_in_threadpool(accounts.sign_in, engine, body.email, body.password,
                                                          _address(request))
    except accounts.TooManyAttempts as exc:
        raise ApiError(429, exc.code, exc.message, {"Retry-After": str(exc.retry_after_s)}) from None
    except accounts.SignInRefused as exc:
        raise ApiError(401, exc.code, exc.message) from None
    return {"token": token.token, "token_id": token.id, "expires_at": expires, "account": account.as_dict()}


@router.post("/sign-out", status_code=204, summary="End this session (or revoke the token used)",
             responses=error_responses(401, 429))
def sign_out(engine: EngineDep, principal: PrincipalDep) -> Response:
    if principal.anonymous or principal.token_id is None:
        raise deny(principal, "signing out")
    revoke_token(engine, principal.token_id)
    return Response(status_code=204)


@router.get("/me", response_model=AccountOut, summary="Your account: name, e-mail, roles per project",
            responses=error_responses(401, 429))
def me(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous or principal.account_id is None:
        raise deny(principal, "reading your account")
    return accounts.get_account(engine, principal.account_id).as_dict()


@router.post("/me/tokens", status_code=201, response_model=TokenOut, summary="Make an API token of your account",
             description="Narrowed, if you say so, to one of your projects and to at most a role you hold there.",
             responses=error_responses(401, 403, 404, 422, 429))
def make_token(body: TokenIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous or principal.account_id is None:
        raise deny(principal, "making tokens")
    # never more than the token used to ask: narrowed to one project the caller is a member of, and
    # to at most the role the caller holds there now (an operator's unnarrowed token may skip both)
    if body.project is None and not principal.operator:
        raise ApiError(422, "project_required", "name the project the token is for")
    if body.project is not None and not principal.is_member_of(body.project):
        raise deny(principal, f"a token for project {body.project!r}")
    project, role = body.project, body.role
    if project is not None and not principal.operator:
        held = principal.role_in(project)
        assert held is not None
        role = lower_role(held, role)
    new = create_account_token(engine, principal.account_id, project=project, role=role, name=body.name)
    return {"id": new.id, "token": new.token, "project": new.project, "role": new.role}


@router.get("/me/tokens", summary="Your tokens (never their secret)", responses=error_responses(401, 429))
def my_tokens(engine: EngineDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    if principal.anonymous or principal.account_id is None:
        raise deny(principal, "listing your tokens")
    return list_tokens(engine, principal.account_id)


@router.delete("/me/tokens/{token_id}", status_code=204, summary="Revoke one of your tokens",
               responses=error_responses(401, 404, 429))
def revoke_my_token(token_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> Response:
    if principal.anonymous or principal.account_id is None:
        raise deny(principal, "revoking tokens")
    if not any(t["id"] == token_id for t in list_tokens(engine, principal.account_id)):
        raise ApiError(404, "token_not_found", f"no token {token_id}")
    revoke_token(engine, token_id)
    return Response(status_code=204)


@router.get("/projects/{slug}/members", response_model=list[MemberOut], summary="The project's members and roles",
            description="Admins of the project and operators.", responses=error_responses(401, 403, 404, 429))
def members(slug: str, engine: EngineDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    get_project(engine, slug)
    if not principal.is_admin_of(slug):
        raise deny(principal, f"listing the members of {slug!r}")
    return [{"id": a.id, "display_name": a.display_name, "email": a.email, "role": a.memberships[slug],
             "last_seen_at": a.last_seen_at} for a in accounts.list_accounts(engine, slug)]


@router.put("/projects/{slug}/members/{account_id}", response_model=MemberOut,
            summary="Give an account a role in the project", description="Admins of the project and operators.",
            responses=error_responses(401, 403, 404, 422, 429))
def grant(slug: str, account_id: DbInt, body: MemberIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    get_project(engine, slug)
    if not principal.is_admin_of(slug):
        raise deny(principal, f"managing the members of {slug!r}")
    account = accounts.grant(engine, account_id, slug, body.role)
    return {"id": account.id, "display_name": account.display_name, "email": account.email,
            "role": account.memberships[slug], "last_seen_at": account.last_seen_at}


@router.delete("/projects/{slug}/members/{account_id}", status_code=204,
               summary="Take away an account's role in the project", description="Admins of the project and operators.",
               responses=error_responses(401, 403, 404, 429))
def revoke(slug: str, account_id: DbInt, engine: EngineDep, principal: PrincipalDep) -> Response:
    get_project(engine, slug)
    if not principal.is_admin_of(slug):
        raise deny(principal, f"managing the members of {slug!r}")
    accounts.revoke(engine, account_id, slug)
    return Response(status_code=204)


@router.get("/accounts", response_model=list[AccountOut], summary="Every account (operators)",
            responses=error_responses(401, 403, 429))
def all_accounts(engine: EngineDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    if not principal.operator:
        raise deny(principal, "listing accounts")
    return [a.as_dict() for a in accounts.list_accounts(engine)]


@router.post("/accounts", status_code=201, response_model=AccountOut, summary="Make an account (operators)",
             responses=error_responses(401, 403, 404, 409, 422, 429))
def create(body: AccountIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if not principal.operator:
        raise deny(principal, "making accounts")
    return accounts.create_account(engine, body.display_name, email=body.email, operator=body.operator,
                                   memberships=dict(body.memberships)).as_dict()


assert set(PROJECT_ROLES) == set(Role.__args__)  # type: ignore[attr-defined]
