"""Jobs whose worker died: found by the workers' recovery loop (``recover_work``) and started again.

A running job whose lease ran out (its worker stopped renewing it: killed, out of memory, the
machine gone) goes back to ``queued`` and is sent to the workers; the next worker resumes it
from its checkpoint. A queued job whose message seems lost (no worker took it by its
``lease_until``) is sent again. Each is taken in one conditional UPDATE (still expired), so two
workers' loops never both send it; a message delivered twice is harmless anyway, since a worker
runs a job only after claiming it (``jobs.claim``). A job whose worker died ``max_attempts``
times fails (``worker_lost``) instead of taking down worker after worker.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, select, update

from core.db.models import utcnow
from core.tasks import start_task
from plugins.video_stream.db import jobs
from plugins.video_stream.jobs import TASK, config_value

log = logging.getLogger(__name__)


def _expired(now: Any) -> Any:
    return and_(jobs.c.state.in_(("queued", "running")), jobs.c.lease_until.is_not(None), jobs.c.lease_until < now)


def fail_exhausted(engine: Any) -> int:
    """Fail the expired running jobs that have used up their attempts."""
    now = utcnow()
    with engine.db.begin() as conn:
        return conn.execute(
            update(jobs).where(_expired(now), jobs.c.state == "running",
                               jobs.c.attempts >= config_value(engine, "max_attempts"))
            .values(state="failed", error_code="worker_lost", lease_token=None, lease_until=None, finished_at=now,
                    updated_at=now,
                    error=f"the worker running this job stopped {config_value(engine, 'max_attempts')} times "
                          "(killed or out of memory?); see the workers' logs")).rowcount


def take_expired(engine: Any) -> list[int]:
    """Put the expired jobs back in the queue and return their ids: one conditional UPDATE per job,
    so a job another worker's loop took meanwhile is not taken twice."""
    now = utcnow()
    resend = now + timedelta(seconds=config_value(engine, "resend_after_s"))
    with engine.db.connect() as conn:
        found = conn.execute(select(jobs.c.id).where(_expired(now)).order_by(jobs.c.id).limit(100)).scalars().all()
    taken = []
    for job_id in found:
        with engine.db.begin() as conn:
            moved = conn.execute(
                update(jobs).where(jobs.c.id == job_id, _expired(now))
                .values(state="queued", lease_token=None, lease_until=resend, updated_at=now)).rowcount
        if moved:
            taken.append(job_id)
    return taken


def recover_work(engine: Any) -> int:
    """Fail the jobs out of attempts, send the others again; returns how many were sent."""
    failed = fail_exhausted(engine)
    if failed:
        log.warning("video_stream: %d job(s) failed: their worker stopped too many times", failed)
    taken = take_expired(engine)
    for job_id in taken:
        try:
            start_task(engine, TASK, job_id=job_id)
        except Exception:  # noqa: BLE001 (the broker is down: the job is queued, and sent again later)
            log.exception("video_stream: job %s is queued again but could not be sent", job_id)
    if taken:
        log.info("video_stream: sent %d job(s) to the workers again: %s", len(taken), taken)
    return len(taken)
