"""Enrichment, quality and grading, as plain functions the worker (or a test) calls.

Each enrichment row is claimed with a conditional UPDATE and a lease, so a task delivered twice,
or re-queued after a worker died, does its work once: only the holder of the lease may store
the result. A plugin that raises or runs out of time is recorded as failed on that observation,
retried with back-off up to a limit, and never touches the other plugins' results.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, delete, or_, select, update

from core.db.models import Enrichment, Observation, QualityFlag, utcnow
from core.db.session import transaction
from core.types import Flag, ObservationView
from core import read_model

if TYPE_CHECKING:
    from core.engine import Engine

log = logging.getLogger(__name__)
TERMINAL = ("done", "failed")


class EnrichmentTimeout(Exception):
    """The plugin ran past its time limit."""


@dataclass(frozen=True)
class Outcome:
    status: str  # done, retry, failed or skipped
    retry_in: float | None = None
    observation_id: int | None = None
    plugin: str | None = None


def timeout_for(engine: Engine, plugin: str) -> float:
    """The time limit of one enrichment call of ``plugin``, in seconds."""
    spec = engine.registry.services.get(plugin)
    if spec and "timeout_s" in spec.config:
        return float(spec.config["timeout_s"])
    return engine.settings.enrich_timeout_s


def _claim(engine: Engine, enrichment_id: int) -> tuple[str, int, str, int] | None:
    now = datetime.now(timezone.utc)
    token = str(uuid.uuid4())
    with transaction(engine.sessions) as session:
        row = session.get(Enrichment, enrichment_id)
        if row is None:
            return None
        lease = now + timedelta(seconds=timeout_for(engine, row.plugin) + engine.settings.lease_grace_s)
        claimed = session.execute(
            update(Enrichment)
            .where(
                Enrichment.id == enrichment_id,
                or_(
                    Enrichment.status == "pending",
                    and_(Enrichment.status == "running", Enrichment.lease_until < now),
                ),
            )
            .values(status="running", attempts=Enrichment.attempts + 1, lease_token=token, lease_until=lease,
                    updated_at=now, started_at=now, duration_ms=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            log.info("enrichment %s not claimed: %s, attempt %s, lease until %s (now %s)", enrichment_id, row.status,
                     row.attempts, row.lease_until, now)
            return None
        session.expire(row)
        return token, row.observation_id, row.plugin, row.attempts


def _json_safe(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if not isinstance(result, dict):
        raise TypeError(f"enrich_observation must return a dict, got {type(result).__name__}")
    return json.loads(json.dumps(result, default=str))


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_enrichment(engine: Engine, enrichment_id: int) -> Outcome:
    """Claim one enrichment, call its plugin, store the result or the failure."""
    claimed = _claim(engine, enrichment_id)
    if claimed is None:
        return Outcome("skipped")
    token, obs_id, plugin, attempts = claimed
    started = time.perf_counter()
    view = read_view(engine, obs_id)
    project = engine.registry.project(view.project)
    host = engine.host
    error: str | None = None
    result: dict[str, Any] = {}
    try:
        if plugin not in host.plugins_of("enrich_observation", project, view.kind):
            raise LookupError(f"plugin {plugin!r} no longer enriches observations of kind {view.kind!r} in "
                              f"project {project.slug!r}")
        answers = host.caller("enrich_observation", project, view.kind, only=plugin)(
            observation=view, project=project, engine=engine)
        result = _json_safe(answers[0] if answers else None)
    except Exception as exc:  # any plugin failure is recorded, never raised into the worker
        error = _describe(exc)
        if _is_time_limit(exc):
            error = f"timed out after {timeout_for(engine, plugin):g} s"
        log.warning("enrichment %s (%s on observation %s) failed: %s", enrichment_id, plugin, obs_id, error)
    took_ms = round((time.perf_counter() - started) * 1000)
    return _finish(engine, enrichment_id, token, obs_id, attempts, result, error, plugin, took_ms)


def _is_time_limit(exc: BaseException) -> bool:
    return isinstance(exc, EnrichmentTimeout) or type(exc).__name__ == "SoftTimeLimitExceeded"


def _finish(
    engine: Engine, enrichment_id: int, token: str, obs_id: int, attempts: int, result: dict[str, Any],
    error: str | None, plugin: str | None = None, duration_ms: int | None = None,
) -> Outcome:
    """Store the attempt's result or failure (and its duration) if the lease is still held."""
    now = utcnow()
    if error is None:
        values: dict[str, Any] = {"status": "done", "result": result, "error": None, "finished_at": now}
        outcome = Outcome("done", observation_id=obs_id, plugin=plugin)
    elif attempts < engine.settings.enrich_max_attempts:
        backoff = engine.settings.enrich_retry_backoff_s * 2 ** (attempts - 1)
        values = {"status": "pending", "error": error, "not_before": now + timedelta(seconds=backoff)}
        outcome = Outcome("retry", retry_in=backoff, observation_id=obs_id, plugin=plugin)
    else:
        values = {"status": "failed", "error": error, "finished_at": now}
        outcome = Outcome("failed", observation_id=obs_id, plugin=plugin)
    with transaction(engine.sessions) as session:
        stored = session.execute(
            update(Enrichment)
            .where(Enrichment.id == enrichment_id, Enrichment.lease_token == token)
            .values(lease_token=None, lease_until=None, updated_at=now, duration_ms=duration_ms, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
    if stored != 1:  # the lease was lost (expired and taken over); the new holder decides
        log.warning("enrichment %s: the lease of attempt %s was lost before its result was stored", enrichment_id,
                    attempts)
        return Outcome("skipped", observation_id=obs_id, plugin=plugin)
    if outcome.status in TERMINAL:
        assess_if_complete(engine, obs_id)
    return outcome


def assess_if_complete(engine: Engine, obs_id: int) -> bool:
    """Run quality checks and grading once every enrichment of the observation has ended
    (whether or not ``assess_due_at`` is set: rows stored before it existed are graded too)."""
    with transaction(engine.readers) as session:
        states = session.scalars(select(Enrichment.status).where(Enrichment.observation_id == obs_id)).all()
    if all(s in TERMINAL for s in states):
        assess(engine, obs_id)
        return True
    return False


def quality_flags(engine: Engine, view: ObservationView) -> list[Flag]:
    """The flags every enabled ``quality_check`` gives ``view``; a plugin that raises is logged
    and flagged ``check_failed``, and the others still run (``PluginHost.call_each``)."""
    project = engine.registry.project(view.project)
    flags: list[Flag] = []
    for called in engine.host.call_each("quality_check", project, view.kind, observation=view, project=project,
                                        engine=engine):
        if called.error is not None:
            log.error("quality_check of plugin %r failed on observation %s: %s", called.plugin, view.id,
                      _describe(called.error))
            flags.append(Flag("check_failed", f"the quality check of {called.plugin} failed: {called.error}", "info",
                              plugin=called.plugin))
            continue
        flags.extend(Flag(f.code, f.message, f.severity, f.value, called.plugin)
                     for found in called.result for f in found or ())
    return flags


def grade(engine: Engine, view: ObservationView, flags: list[Flag]) -> str:
    """The grade: the first answer of the enabled ``grade_observation`` implementations (pluggy's
    ``firstresult``; the engine's own rule answers last)."""
    project = engine.registry.project(view.project)
    answer = engine.host.hooks(project, view.kind).grade_observation(observation=view, flags=flags, project=project,
                                                                     engine=engine)
    if answer is None:
        raise RuntimeError("no plugin graded the observation; the engine's own rule should have")
    return str(answer)


def read_view(engine: Engine, obs_id: int) -> ObservationView:
    """The observation as plugins see it (``core.read_model``)."""
    with transaction(engine.readers) as session:
        return read_model.read_view(session, obs_id, engine.media)


def assess(engine: Engine, obs_id: int, *, due_only: bool = False) -> bool:
    """Quality flags and grade, stored together; returns whether this call stored them.

    Safe to run more than once, at the same time in several workers, and late: the grading
    transaction first updates the observation's row on the condition that ``assess_due_at`` is
    still what was read before the checks ran, which also locks the row; a call that loses that
    race (another worker graded this version, or an edit made a newer one) stores nothing, so
    flags are never written twice. The grade that completes the observation's enrichments
    clears ``assess_due_at``; one that comes earlier (a plugin re-assessing a neighbour) leaves
    it for the grading after them.

    ``due_only``: do nothing unless the observation still owes an assessment and every
    enrichment has ended (the messages sent after a commit, by the recovery loop, and at the
    end of the last enrichment).
    """
    with transaction(engine.readers) as session:
        due = session.execute(select(Observation.assess_due_at).where(Observation.id == obs_id)).first()
        if due is None:
            return False  # deleted meanwhile
        due_at = due[0]
        states = session.scalars(select(Enrichment.status).where(Enrichment.observation_id == obs_id)).all()
    complete = all(s in TERMINAL for s in states)
    if due_only and (due_at is None or not complete):
        return False
    view = read_view(engine, obs_id)
    flags = quality_flags(engine, view)
    decided = grade(engine, view, flags)
    values: dict[str, Any] = {"grade": decided}
    if complete and due_at is not None:
        values["assess_due_at"] = None
    unchanged = Observation.assess_due_at.is_(None) if due_at is None else Observation.assess_due_at == due_at
    with transaction(engine.sessions) as session:
        won = session.execute(
            update(Observation).where(Observation.id == obs_id, unchanged).values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount == 1
        if not won:
            log.info("observation %s: assessed by another worker, or changed since; nothing stored", obs_id)
            return False
        session.execute(delete(QualityFlag).where(QualityFlag.observation_id == obs_id))
        session.add_all(
            QualityFlag(observation_id=obs_id, plugin=f.plugin or "core", code=f.code, severity=f.severity,
                        message=f.message, value=_json_value(f.value))
            for f in flags
        )
    _tell_assessed(engine, view, flags, decided)
    return True


def _tell_assessed(engine: Engine, view: ObservationView, flags: list[Flag], decided: str) -> None:
    """``on_assessed`` of every enabled plugin, one at a time; a failure is logged, never raised."""
    project = engine.registry.project(view.project)
    for called in engine.host.call_each("on_assessed", project, view.kind, observation=view, flags=flags,
                                        grade=decided, project=project, engine=engine):
        if called.error is not None:
            log.error("on_assessed of plugin %r failed on observation %s: %s", called.plugin, view.id,
                      _describe(called.error))


def _json_value(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str)) if value is not None else None


def stale_enrichments(engine: Engine, older_than_s: float = 30.0) -> list[int]:
    """Enrichments a dead worker or a lost message left behind: due pending rows not touched
    for a while, and running rows whose lease has expired."""
    now = utcnow()
    quiet = now - timedelta(seconds=older_than_s)
    with transaction(engine.readers) as session:
        return list(
            session.scalars(
                select(Enrichment.id).where(
                    or_(
                        and_(
                            Enrichment.status == "pending",
                            Enrichment.updated_at < quiet,
                            or_(Enrichment.not_before.is_(None), Enrichment.not_before < now),
                        ),
                        and_(Enrichment.status == "running", Enrichment.lease_until < now),
                    )
                )
            ).all()
        )


def due_assessments(engine: Engine, older_than_s: float = 30.0, limit: int = 500) -> list[tuple[int, datetime]]:
    """Observations that still owe quality checks and grading although every enrichment has
    ended (or they have none), and have for a while: the message that asked for it was lost
    (broker down, worker killed). (id, ``assess_due_at``), oldest first, at most ``limit``."""
    quiet = utcnow() - timedelta(seconds=older_than_s)
    unfinished = (
        select(Enrichment.id)
        .where(Enrichment.observation_id == Observation.id, Enrichment.status.not_in(TERMINAL))
        .exists()
    )
    with transaction(engine.readers) as session:
        rows = session.execute(
            select(Observation.id, Observation.assess_due_at)
            .where(Observation.assess_due_at.is_not(None), Observation.assess_due_at < quiet, ~unfinished)
            .order_by(Observation.assess_due_at)
            .limit(limit)
        ).all()
    return [(row.id, row.assess_due_at) for row in rows]
