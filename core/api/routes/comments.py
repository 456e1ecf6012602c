"""Comments: read and write them on an observation, hide or unhide one, lock an observation's
comments, and the per-project feed for community managers."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from core import comments
from core.api.deps import DbInt, EngineDep, ObsId, PrincipalDep, deny
from core.api.schemas import error_responses
from core.lifecycle import get_project

router = APIRouter(prefix="/api/v1", tags=["comments"])

Cursor = Annotated[str | None, Query(min_length=1, max_length=10, pattern=r"^[0-9]+$",
                                     description="next_cursor of the previous page, as given")]
Limit = Annotated[int, Query(ge=1, le=200)]
_CONTROL = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F"
BODY_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
"""What ``core.comments.check_body`` takes, as the schema can say it (it checks again)."""


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"body": "Lovely photo: a red fox?"}]})

    body: str = Field(min_length=1, max_length=comments.MAX_BODY, pattern=BODY_PATTERN,
                      description=f"1 to {comments.MAX_BODY} characters, not all blank; no control characters "
                      "other than newline, carriage return and tab (stored trimmed, line ends as newlines)")


class CommentOut(BaseModel):
    id: int
    observation_id: int
    body: str
    author: str | None = Field(description="the author's display name; null once the author's account is erased")
    created_at: str
    hidden: bool
    yours: bool
    author_id: int | None = Field(None, description="staff only: the author's account id")
    hidden_at: str | None = Field(None, description="staff only")


class CommentPage(BaseModel):
    items: list[CommentOut]
    next_cursor: str | None = None


class ObservationComments(CommentPage):
    open: bool = Field(description="whether the observation takes new comments now")
    locked: bool
    comments_on: bool = Field(description="whether the project takes comments at all")


class LockOut(BaseModel):
    observation_id: int
    locked: bool


MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL: a larger cursor means "from the newest"


def _cursor(cursor: str | None) -> int | None:
    return min(int(cursor), MAX_ID) if cursor is not None else None


@router.get("/observations/{obs_id}/comments", response_model=ObservationComments, response_model_exclude_unset=True,
            summary="An observation's comments, oldest first",
            description="Whoever may read the observation sees its visible comments, with the author's display name "
            "only; the author and the project's staff also see the author's hidden ones (`hidden: true`). 404 both "
            "for an id that does not exist and for an observation you may not see.",
            responses=error_responses(401, 404, 422, 429))
def list_comments(obs_id: ObsId, engine: EngineDep, principal: PrincipalDep, cursor: Cursor = None,
                  limit: Limit = 50) -> dict[str, Any]:
    return comments.of_observation(engine, principal, obs_id, cursor=_cursor(cursor), limit=limit)


@router.post("/observations/{obs_id}/comments", status_code=201, response_model=CommentOut,
             response_model_exclude_unset=True, summary="Comment on an observation",
             description="Members of the observation's project who may read it. 409 `comments_off` when the project "
             "takes no comments, 409 `comments_locked` when staff locked this observation's.",
             responses=error_responses(401, 403, 404, 409, 422, 429))
def post_comment(obs_id: ObsId, body: CommentIn, engine: EngineDep, principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "commenting")
    return comments.post(engine, principal, obs_id, body.body)


@router.post("/comments/{comment_id}/{action}", response_model=CommentOut, response_model_exclude_unset=True,
             summary="Hide or unhide a comment",
             description="Staff of the comment's project. A hidden comment is kept: its author and staff still see "
             "it. Audited; asking again changes nothing.",
             responses=error_responses(401, 403, 404, 422, 429))
def hide_comment(comment_id: DbInt, action: Literal["hide", "unhide"], engine: EngineDep,
                 principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "hiding comments")
    return comments.set_hidden(engine, principal, comment_id, action == "hide")


@router.post("/observations/{obs_id}/comments/{action}", response_model=LockOut,
             summary="Lock or unlock an observation's comments",
             description="Staff of the observation's project. Locked: the comments stay readable, no new ones are "
             "taken. Audited.", responses=error_responses(401, 403, 404, 422, 429))
def lock_comments(obs_id: ObsId, action: Literal["lock", "unlock"], engine: EngineDep,
                  principal: PrincipalDep) -> dict[str, Any]:
    if principal.anonymous:
        raise deny(principal, "locking comments")
    return comments.set_locked(engine, principal, obs_id, action == "lock")


@router.get("/projects/{slug}/comments", response_model=CommentPage, response_model_exclude_unset=True,
            summary="The project's comments, newest first (community managers)",
            description="Operators, and admins and moderators of the project: every comment with its author's "
            "display name and account id; `state` picks visible, hidden or all.",
            responses=error_responses(401, 403, 404, 422, 429))
def project_comments(slug: str, engine: EngineDep, principal: PrincipalDep,
                     state: Literal["visible", "hidden", "all"] = "all", cursor: Cursor = None,
                     limit: Limit = 50) -> dict[str, Any]:
    get_project(engine, slug)
    if not principal.is_staff_of(slug):
        raise deny(principal, f"reading the comment feed of {slug!r}")
    return comments.feed(engine, principal, slug, state=state, cursor=_cursor(cursor), limit=limit)
