"""Your own data: consents you gave, a download of everything the engine holds about you, and
erasure of your account (``core.consent``, ``core.gdpr``)."""

from __future__ import annotations

import tempfile
from typing import Annotated, Any, Iterator, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from core import consent, data_use, feedback, gdpr
from core.api.access import can_see_project
from core.api.deps import EngineDep, PrincipalDep, deny
from core.api.routes.feedback import ResultFeedbackOut, ServiceFeedbackOut
from core.api.schemas import error_responses
from core.errors import NotFound
from core.lifecycle import get_project

router = APIRouter(prefix="/api/v1", tags=["me"])
ERASE_CONFIRMATION = "erase my account"
NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"project": "alpha", "choice": "licence", "version": "1", "agreed": True}]})

    project: str = Field(pattern=NAME)
    choice: str = Field(pattern=NAME, description="licence, attribution, or one of the project's consent choices")
    version: str = Field(min_length=1, max_length=32, description="the version of the text the person was shown: "
                         "it must be the current one")
    agreed: bool


class ConsentOut(BaseModel):
    project: str
    choice: str
    version: str
    agreed: bool
    at: str
    current_version: str | None = None
    outdated: bool | None = None


class ConsentsOut(BaseModel):
    current: list[ConsentOut] = Field(description="your newest answer per project and choice")
    history: list[ConsentOut] = Field(description="every answer, newest first")


class EraseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"confirm": ERASE_CONFIRMATION}]})

    confirm: Literal["erase my account"] = Field(description="exactly this sentence: erasure cannot be undone")


class ErasureOut(BaseModel):
    erased: bool
    observations_anonymised: int
    observations_deleted: int
    media_files_deleted: int
    comments_kept_without_author: int
    audit_entries_rewritten: int
    tokens_deleted: int


def _project_for(engine: Any, principal: Any, slug: str) -> Any:
    """The project, unless the caller may not know it exists (then the 404 of a missing one)."""
    project = get_project(engine, slug)
    if not can_see_project(principal, project):
        raise NotFound(f"unknown project {slug!r}", code="unknown_project")
    return project


@router.post("/me/consents", status_code=201, response_model=ConsentOut, response_model_exclude_none=True,
             summary="Record your answer to a project's choice",
             description="`choice` is `licence` (the project's data licence), `attribution` (name me as the recorder "
             "in open data) or one of the project's consent choices; `version` must be the current version of its "
             "text (422 `consent_version_outdated` names it). The newest answer holds; older ones are kept.",
             responses=error_responses(401, 404, 422, 429))
def post_consent(body: ConsentIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "recording consent")
    project = _project_for(engine, principal, body.project)
    return consent.record(engine, principal.account_id, project, body.choice, body.version, body.agreed)


@router.get("/me/consents", response_model=ConsentsOut, response_model_exclude_none=True,
            summary="Your answers: the one that holds per choice, and the history",
            responses=error_responses(401, 422, 429))
def get_consents(engine: EngineDep, principal: PrincipalDep,
                 project: Annotated[str | None, Query(pattern=NAME)] = None) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "reading your consents")
    return consent.answers_of(engine, principal.account_id, project)


def _chunks(spool: Any) -> Iterator[bytes]:
    try:
        while chunk := spool.read(65536):
            yield chunk
    finally:
        spool.close()


@router.get("/me/data", summary="Download everything the engine holds about you (zip)",
            description="account.json, consents.json, observations.csv and observations.json (exact places) with "
            "your media under media/, comments.json and audit.json.",
            response_class=StreamingResponse,
            responses={200: {"content": {"application/zip": {}}}, **error_responses(401, 429)})
async def download_my_data(engine: EngineDep, principal: PrincipalDep) -> StreamingResponse:
    if principal.anonymous:
        raise deny(principal, "downloading your data")
    spool = tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024)

    def build() -> None:
        gdpr.write_export(engine, principal.account_id, spool)
        spool.seek(0)

    try:
        await run_in_threadpool(build)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(_chunks(spool), media_type="application/zip",
                             headers={"Content-Disposition": 'attachment; filename="my-observatory-data.zip"'})


@router.delete("/me", response_model=ErasureOut, summary="Erase your account (irreversible)",
               description=f"Body: {{\"confirm\": \"{ERASE_CONFIRMATION}\"}}. Your account, e-mail, password, tokens, "
               "memberships and consents are deleted; your comments stay without an author; your observations are "
               "anonymised or deleted as each project's `erasure` policy says. This token stops working at once.",
               responses=error_responses(401, 422, 429))
def erase_me(body: EraseIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "erasing your account")
    result = gdpr.erase(engine, principal.account_id, actor=gdpr.ERASED)
    return {"erased": True, **result.as_dict()}


class MyFeedbackOut(BaseModel):
    services: list[ServiceFeedbackOut] = Field(description="what you sent services' maintainers, newest first, "
                                               "with its state")
    results: list[ResultFeedbackOut] = Field(description="your verdicts on results, newest first (at most 200)")


class MyDataUseOut(BaseModel):
    month: str = Field(description="this month, YYYY-MM (UTC)")
    downloads: int = Field(description="downloads this month that held at least one of your observations")
    purposes: dict[str, int] = Field(description="those downloads per purpose")
    all_time_downloads: int
    text: str = Field(description="the sentence your feed shows")


@router.get("/me/feedback", response_model=MyFeedbackOut, response_model_exclude_unset=True,
            summary="Your feedback and its state",
            description="Ratings, comments and feature requests you sent services' maintainers, with the state they "
            "gave each (planned, done, declined) and their note; and your verdicts on results.",
            responses=error_responses(401, 429))
def my_feedback(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "reading your feedback")
    return {"services": feedback.mine(engine, principal), "results": feedback.my_verdicts(engine, principal)}


@router.get("/me/data-use", response_model=MyDataUseOut, summary="How your observations were used this month",
            description="How many downloads this month held at least one of your observations, per purpose "
            "(\"your observations were used in 12 downloads this month: 9 research, 3 education\"). Never who "
            "downloaded.", responses=error_responses(401, 429))
def my_data_use(engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous or principal.account_id is None:
        raise deny(principal, "reading how your data was used")
    return data_use.contributor_summary(engine, principal.account_id)
