"""Comments on observations: contributors and staff write them, staff hide or unhide them (kept,
audited) and lock an observation's comments, a project switches them off (``comments: false`` in registry.yaml, or the console's switch:
``core.project_switches``).

Who sees what: a reader of an observation (``core.api.access.can_read``) sees its visible
comments with the author's display name only; the author and the project's staff also see the
author's hidden ones, marked hidden. Staff also see the author's account id. An erased author's
comments stay, without an author. The observer's own comments on their observation are not
named to a caller who may not see who the observer is (``sees_everything``): the name would
tell them.
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from core.api.access import can_read, sees_everything
from core.audit import audit
from core.db.models import Account, Comment, Observation, utcnow
from core.db.session import transaction
from core.engine import Engine
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.tokens import Principal
from core.types import CommentView, ObservationView, Problem, ProjectContext
from core.project_switches import comments_on
from core.views import observation_not_found, observation_view

log = logging.getLogger(__name__)

MAX_BODY = 5000
STATES = ("visible", "hidden", "all")
ALLOWED_CONTROLS = "\n\t"


def check_body(body: str) -> str:
    """The body as stored (line ends as ``\\n``, trimmed); ValidationFailed (422) for an empty one,
    one over MAX_BODY characters, or one with control characters other than newline and tab."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    problem = None
    if not text:
        problem = Problem(("body",), "a comment needs some text", "comment_empty")
    elif len(text) > MAX_BODY:
        problem = Problem(("body",), f"a comment has at most {MAX_BODY} characters, this one {len(text)}",
                          "comment_too_long")
    else:
        bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs") and c not in ALLOWED_CONTROLS), None)
        if bad is not None:
            problem = Problem(("body",), f"a comment must not contain control characters (U+{ord(bad):04X})",
                              "comment_control_characters")
    if problem is not None:
        raise ValidationFailed([problem])
    return text


def _readable_observation(engine: Engine, session: Session, principal: Principal, obs_id: int) -> Observation:
    obs = session.get(Observation, obs_id)
    if obs is None or not can_read(principal, obs, engine.registry.project(obs.project)):
        raise observation_not_found(obs_id)
    return obs


def _seen_by(principal: Principal, project: str) -> Any:
    """What of a project's comments ``principal`` sees: staff everything, others the visible ones
    and their own hidden ones."""
    if principal.is_staff_of(project):
        return None
    if principal.account_id is None:
        return Comment.hidden_at.is_(None)
    return or_(Comment.hidden_at.is_(None), Comment.account_id == principal.account_id)


def _with_authors(query: Select[Any]) -> Select[Any]:
    return query.add_columns(Account.display_name).outerjoin(Account, Account.id == Comment.account_id)


def _item(c: Comment, author: str | None, principal: Principal, staff: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": c.id, "observation_id": c.observation_id, "body": c.body,
        "author": author, "created_at": c.created_at.isoformat(), "hidden": c.hidden_at is not None,
        "yours": principal.account_id is not None and c.account_id == principal.account_id,
    }
    if staff:
        out["author_id"] = c.account_id
        out["hidden_at"] = c.hidden_at.isoformat() if c.hidden_at else None
    return out


def post(engine: Engine, principal: Principal, obs_id: int, body: str) -> dict[str, Any]:
    """A new comment by ``principal`` (a member of the observation's project, or an operator).

    404 for an observation the caller may not read; Forbidden for one who is not a member;
    Conflict ``comments_off`` when the project takes no comments, ``comments_locked`` when staff
    locked the observation's."""
    text = check_body(body)
    with transaction(engine.sessions) as session:
        obs = _readable_observation(engine, session, principal, obs_id)
        project = engine.registry.project(obs.project)
        if principal.account_id is None or not principal.is_member_of(obs.project):
            raise Forbidden(f"only members of project {obs.project!r} comment on its observations",
                            code="not_a_member")
        if not comments_on(engine, project):
            raise Conflict(f"project {obs.project!r} takes no comments", code="comments_off")
        if obs.comments_locked:
            raise Conflict(f"comments on observation {obs_id} are locked", code="comments_locked")
        comment = Comment(observation_id=obs.id, project=obs.project, account_id=principal.account_id, body=text)
        session.add(comment)
        session.flush()
        author = session.get(Account, principal.account_id)
        item = _item(comment, author.display_name if author else None, principal, principal.is_staff_of(obs.project))
        told = CommentView(comment.id, obs.id, obs.project, comment.account_id, comment.body, comment.created_at)
        view = observation_view(obs, engine.media)
    _tell_comment(engine, told, view, project)
    return item


def _tell_comment(engine: Engine, comment: CommentView, view: ObservationView, project: ProjectContext) -> None:
    """``on_comment`` of every enabled plugin, after the commit; a failure is logged, never raised."""
    for called in engine.host.call_each("on_comment", project, view.kind, comment=comment, observation=view,
                                        project=project, engine=engine):
        if called.error is not None:
            log.error("on_comment of plugin %r failed on comment %s: %s", called.plugin, comment.id, called.error)


def of_observation(engine: Engine, principal: Principal, obs_id: int, *, cursor: int | None = None,
                   limit: int = 50) -> dict[str, Any]:
    """An observation's comments as ``principal`` sees them, oldest first, ``limit`` at a time
    (``cursor``: the ``next_cursor`` of the previous page); with whether it takes comments now."""
    with transaction(engine.readers) as session:
        obs = _readable_observation(engine, session, principal, obs_id)
        staff = principal.is_staff_of(obs.project)
        query = _with_authors(select(Comment)).where(Comment.observation_id == obs_id)
        seen = _seen_by(principal, obs.project)
        if seen is not None:
            query = query.where(seen)
        if cursor is not None:
            query = query.where(Comment.id > cursor)
        rows = session.execute(query.order_by(Comment.id).limit(limit + 1)).all()
        project = engine.registry.project(obs.project)
        on = comments_on(engine, project)
        # the observer's own comments would name the observer to a caller who may not know who it is
        masked = None if sees_everything(principal, obs) else obs.contributor_id
        items = [_item(c, None if masked is not None and c.account_id == masked else name, principal, staff)
                 for c, name in rows[:limit]]
        return {"items": items, "next_cursor": str(rows[limit - 1][0].id) if len(rows) > limit else None,
                "open": on and not obs.comments_locked, "locked": obs.comments_locked,
                "comments_on": on}


def feed(engine: Engine, principal: Principal, project: str, *, state: str = "all", cursor: int | None = None,
         limit: int = 50) -> dict[str, Any]:
    """The project's comments, newest first, for its staff: ``state`` visible, hidden or all."""
    if state not in STATES:
        raise ValidationFailed([Problem(("state",), f"state is one of {', '.join(STATES)}", "unknown_state")])
    if not principal.is_staff_of(project):
        raise Forbidden(f"the comment feed of {project!r} is for its staff", code="forbidden")
    query = _with_authors(select(Comment)).where(Comment.project == project)
    if state == "visible":
        query = query.where(Comment.hidden_at.is_(None))
    elif state == "hidden":
        query = query.where(Comment.hidden_at.is_not(None))
    if cursor is not None:
        query = query.where(Comment.id < cursor)
    with transaction(engine.readers) as session:
        rows = session.execute(query.order_by(Comment.id.desc()).limit(limit + 1)).all()
    items = [_item(c, name, principal, True) for c, name in rows[:limit]]
    return {"items": items, "next_cursor": str(rows[limit - 1][0].id) if len(rows) > limit else None}


def _comment_for_staff(engine: Engine, session: Session, principal: Principal, comment_id: int) -> Comment:
    """The comment, for its project's staff; 404 when the caller cannot see it, 403 when it can
    but is not staff."""
    comment = session.get(Comment, comment_id)
    missing = NotFound(f"no comment {comment_id}", code="comment_not_found")
    if comment is None:
        raise missing
    if principal.is_staff_of(comment.project):
        return comment
    obs = session.get(Observation, comment.observation_id)
    sees = obs is not None and can_read(principal, obs, engine.registry.project(obs.project)) and (
        comment.hidden_at is None or comment.account_id == principal.account_id)
    if not sees:
        raise missing
    raise Forbidden(f"hiding comments of {comment.project!r} is for its staff", code="forbidden")


def set_hidden(engine: Engine, principal: Principal, comment_id: int, hidden: bool,
               actor: str | None = None) -> dict[str, Any]:
    """Hide (``hidden``) or unhide a comment: kept, and audited when it changes (``hide_comment``,
    ``unhide_comment``; the entry names the comment, not its text). Asking again changes nothing."""
    with transaction(engine.sessions) as session:
        comment = _comment_for_staff(engine, session, principal, comment_id)
        if (comment.hidden_at is not None) != hidden:
            before = {"comment_id": comment.id, "hidden": comment.hidden_at is not None}
            comment.hidden_at = utcnow() if hidden else None
            audit(session, comment.project, comment.observation_id, actor or principal.actor,
                  "hide_comment" if hidden else "unhide_comment", before, {"comment_id": comment.id, "hidden": hidden})
            session.flush()
        author = session.get(Account, comment.account_id) if comment.account_id is not None else None
        return _item(comment, author.display_name if author else None, principal, True)


def set_locked(engine: Engine, principal: Principal, obs_id: int, locked: bool,
               actor: str | None = None) -> dict[str, Any]:
    """Lock (no new comments) or unlock an observation's comments; audited when it changes."""
    with transaction(engine.sessions) as session:
        obs = _readable_observation(engine, session, principal, obs_id)
        if not principal.is_staff_of(obs.project):
            raise Forbidden(f"locking comments of {obs.project!r} is for its staff", code="forbidden")
        if obs.comments_locked != locked:
            audit(session, obs.project, obs.id, actor or principal.actor,
                  "lock_comments" if locked else "unlock_comments",
                  {"comments_locked": obs.comments_locked}, {"comments_locked": locked})
            obs.comments_locked = locked
        return {"observation_id": obs.id, "locked": locked}


OPERATOR = Principal(operator=True)
"""The engine's own rights, for the command line (whose audit entries say ``cli``)."""
