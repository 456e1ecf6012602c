"""The video_stream service's hooks. The work is done in the modules they name (see ``__init__``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from core import hookimpl
from core.types import BackgroundTask, Draft, ObservationType, Problem, ProjectContext

if TYPE_CHECKING:
    from core.engine import Engine

SERVICE = "video_stream"


@hookimpl
def startup(engine: Engine) -> None:
    from plugins.video_stream.db import create_tables

    create_tables(engine)


@hookimpl
def register_routes(register: Callable[..., None]) -> None:
    from plugins.video_stream.routes import router

    register(router)


@hookimpl
def register_commands(cli: Any) -> None:
    from plugins.video_stream.commands import register

    register(cli)


def settings_of(project: ProjectContext) -> dict[str, Any]:
    """The project's video_stream settings, defaults filled in by the registry."""
    return project.settings(SERVICE)


def config_of(engine: Engine) -> dict[str, Any]:
    """The service's operator configuration (``services.video_stream.config`` in registry.yaml)."""
    return dict(engine.registry.services[SERVICE].config or {})


@hookimpl
def register_tasks(register: Callable[[BackgroundTask], None]) -> None:
    from plugins.video_stream.jobs import TASK
    from plugins.video_stream.runner import run

    register(BackgroundTask(TASK, run, "process one video job (a file, a URL or a live stream) into events"))


@hookimpl
def recover_work(engine: Engine) -> int:
    from plugins.video_stream.recovery import recover_work as recover

    return recover(engine)


@hookimpl
def register_observation_types(register: Callable[[ObservationType], None]) -> None:
    from plugins.video_stream.observations import observation_type

    register(observation_type())


@hookimpl
def validate_observation(draft: Draft) -> list[Problem] | None:
    """Video events are the service's machine observations: no person submits one."""
    from plugins.video_stream.observations import KIND

    if draft.kind == KIND and draft.contributor_id is not None:
        return [Problem(("kind",), f"{KIND} observations are made by the video service from video jobs "
                        "(POST .../video/jobs), not submitted", "machine_kind")]
    return None


@hookimpl
def erase_account(account_id: int, engine: Engine) -> None:
    """Deployments and jobs keep who made them: forgotten (they stay the project's)."""
    from sqlalchemy import update

    from plugins.video_stream.db import deployments, jobs

    with engine.db.begin() as conn:
        conn.execute(update(deployments).where(deployments.c.created_by == account_id).values(created_by=None))
        conn.execute(update(jobs).where(jobs.c.created_by == account_id).values(created_by=None))


@hookimpl
def personal_data(account_id: int, engine: Engine) -> dict[str, Any]:
    """The deployments and video jobs the person made (a URL's password left out)."""
    from sqlalchemy import select

    from plugins.video_stream.db import deployments, jobs
    from plugins.video_stream.jobs import shown_source

    with engine.db.connect() as conn:
        made = conn.execute(select(deployments).where(deployments.c.created_by == account_id)
                            .order_by(deployments.c.id)).all()
        ran = conn.execute(select(jobs).where(jobs.c.created_by == account_id).order_by(jobs.c.id)).all()
    return {
        "deployments": [{"project": d.project, "deployment_id": d.deployment_id, "location_name": d.location_name,
                         "lat": d.lat, "lon": d.lon, "created_at": d.created_at.isoformat()} for d in made],
        "jobs": [{"project": j.project, "uuid": j.uuid, "source_kind": j.source_kind,
                  "source": shown_source(j.source_kind, j.source) if j.source_kind in ("url", "stream") else None,
                  "filename": j.filename, "state": j.state, "created_at": j.created_at.isoformat()} for j in ran],
    }
