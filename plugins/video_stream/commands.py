"""``observatory video submit|status|cancel|list`` and ``observatory video deployments add|list``.

The commands act as an operator, on the engine directly (no token): a FILE is copied into the
service's uploads folder (under the data folder, which the workers share), so it need not be
inside the allowed folders; ``--in-place`` reads it where it is instead (then it must be). A URL
is processed by the workers. ``--wait`` follows the job to its end with a progress bar (a plain
line every few seconds when the output is not a terminal).

Exit status: 0; 1 for a job that does not exist, cannot be cancelled, or (with ``--wait``)
failed or was cancelled; 2 for invalid input (an unknown project or deployment, bad settings,
a file that is not a video); 3 when the engine cannot start.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, NoReturn

import click

from core.cli import EXIT_INVALID, echo_json, engine_of, fail, with_examples
from core.errors import EngineError, ValidationFailed

POLL_S = 0.5
PLAIN_EVERY_S = 5.0
NO_WORKER_HINT_S = 15.0


def _invalid(exc: EngineError) -> NoReturn:
    fail(exc.message, EXIT_INVALID)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def progress_line(job: dict[str, Any]) -> str:
    """One line: ``job 7 running: 40% (48/120 frames, 21.3 fps, 3s left)``."""
    p = job["progress"]
    if job["state"] in ("done", "failed", "cancelled"):
        text = f"job {job['id']} {job['state']}: {job['events']} event(s), {job['observations']} observation(s)"
        if job["error"]:
            text += f"; {job['error']['code']}: {job['error']['message']}"
        return text
    if job["state"] == "queued":
        return f"job {job['id']} queued: waiting for a worker"
    if p["frames_total"]:
        done = f"{p['percent'] or 0:.0f}% ({p['frames_done']}/{p['frames_total']} frames"
    else:
        done = f"{p['frames_done']} frames ({'a stream' if job.get('source_kind') == 'stream' else 'opening'}"
    fps = f", {p['fps']:.1f} fps" if p.get("fps") else ""
    left = f", {_duration(p['eta_s'])} left" if p.get("eta_s") is not None else ""
    cancelling = ", cancelling" if job["cancel_requested"] else ""
    return f"job {job['id']} {job['state']}: {done}{fps}{left}{cancelling}), {job['events']} event(s)"


def _job(engine: Any, job_id: int) -> dict[str, Any]:
    from plugins.video_stream import routes, submission

    try:
        return routes.job_out(engine, submission.job_of(engine, submission.CLI_PRINCIPAL, job_id))
    except EngineError as exc:
        fail(exc.message, 1)


def follow(engine: Any, job_id: int, *, tty: bool, echo: Callable[[str], None] = click.echo,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Watch the job until it ends; returns it ended. A progress bar on a terminal, else a line
    when something changed, at most every few seconds."""
    job = _job(engine, job_id)
    started = time.monotonic()
    hinted = False
    last_line, last_at = "", 0.0
    bar = None
    shown = 0
    try:
        while job["state"] not in ("done", "failed", "cancelled"):
            total = job["progress"]["frames_total"]
            if tty and total and bar is None:
                bar = click.progressbar(length=total, label=f"job {job_id}", show_eta=True, show_percent=True)
                bar.__enter__()
            if bar is not None:
                done = min(job["progress"]["frames_done"], total or 0)
                bar.update(done - shown)
                shown = done
            else:
                line = progress_line(job)
                if line != last_line and time.monotonic() - last_at >= (PLAIN_EVERY_S if last_line else 0):
                    echo(line)
                    last_line, last_at = line, time.monotonic()
            if job["state"] == "queued" and not hinted and time.monotonic() - started > NO_WORKER_HINT_S:
                echo(f"job {job_id} is still queued: is a worker running (observatory serve, or observatory worker)?")
                hinted = True
            sleep(POLL_S)
            job = _job(engine, job_id)
        if bar is not None:
            bar.update(max(0, (job["progress"]["frames_total"] or 0) - shown))
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    return job


def _show(job: dict[str, Any], files: dict[str, Path]) -> None:
    click.echo(progress_line(job))
    source = job["source"] or job["filename"] or ""
    click.echo(f"  project {job['project']}, deployment {job['deployment']}, {job['source_kind']} {source}")
    if job["gaps_total"]:
        click.echo(f"  {job['gaps_total']} gap(s) in the stream; the last: {json.dumps(job['gaps'][-1], default=str)}")
    for name, path in files.items():
        click.echo(f"  {name}: {path}")


def _output_files(engine: Any, job_id: int) -> dict[str, Path]:
    """The job's outputs (name -> file), once it has them."""
    from plugins.video_stream import jobs

    stored = (jobs.get_job(engine, job_id) or {}).get("outputs") or {}
    return {name: jobs.job_folder(engine, job_id) / file for name, file in stored.items()} if stored else {}


def _settings(sample_fps: float | None, sensitivity: float | None, min_area: float | None, roi: str | None,
              top_k: int | None, model: str | None, classes: tuple[str, ...]) -> dict[str, Any]:
    given: dict[str, Any] = {}
    for name, value in (("sample_fps", sample_fps), ("sensitivity", sensitivity), ("min_area", min_area),
                        ("top_k", top_k), ("model", model)):
        if value is not None:
            given[name] = value
    if roi is not None:
        try:
            given["roi"] = [float(v) for v in roi.split(",")]
        except ValueError:
            fail(f"--roi must be four numbers x,y,width,height (0-1), got {roi!r}", EXIT_INVALID)
    if classes:
        given["classes_of_interest"] = list(classes)
    return given


def register(cli: click.Group) -> None:
    @cli.group(help=with_examples(
        "Camera-trap and underwater video into machine observations (the video_stream service; "
        "docs/video_stream.md): deployments, jobs, their progress and outputs.",
        "observatory video deployments add wildlife cam-01 --lat 41.412 --lon 2.131",
        "observatory video submit wildlife clip.mp4 --deployment cam-01 --wait",
    ))
    def video() -> None:
        pass

    @video.command("submit", help=with_examples(
        "Submit a video of PROJECT: a FILE (copied into the data folder for the workers; --in-place reads it "
        "where it is, inside the allowed folders) or a URL (http(s), rtsp: live). Settings not given are the "
        "project's. Prints the job's id; --wait follows it to its end.",
        "observatory video submit wildlife clip.mp4 --deployment cam-01 --wait",
        "observatory video submit wildlife rtsp://192.0.2.7/live --deployment pier --sensitivity 0.4",
        "observatory video submit wildlife /srv/traps/IMG_0042.MP4 --deployment cam-01 --in-place --sample-fps 4",
    ))
    @click.argument("project")
    @click.argument("source")
    @click.option("--deployment", required=True, help="the deployment_id the video comes from")
    @click.option("--sample-fps", type=float, help="frames sampled per second of video")
    @click.option("--sensitivity", type=float, help="0-1: higher finds fainter motion, keeps more empty frames")
    @click.option("--min-area", type=float, help="smallest moving region kept, a fraction of the frame")
    @click.option("--roi", help="region of interest x,y,width,height relative to the frame, e.g. 0,0.3,1,0.7")
    @click.option("--top-k", type=int, help="classes kept per event")
    @click.option("--model", help="species_id's model for the crops")
    @click.option("--class", "classes", multiple=True, help="a class of interest (repeat); none: every class")
    @click.option("--start-time", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
                                                       "%Y-%m-%d %H:%M:%S"]),
                  help="when the video starts, if its metadata does not say (no zone: the project's)")
    @click.option("--stream", is_flag=True, help="an http(s) URL is a live stream (rtsp always is)")
    @click.option("--in-place", is_flag=True, help="read FILE where it is (inside allowed_folders), not a copy")
    @click.option("--wait", is_flag=True, help="follow the job until it ends; exit 1 if it fails")
    @click.option("--json", "as_json", is_flag=True, help="print the job as JSON")
    @click.pass_context
    def submit(ctx: click.Context, project: str, source: str, deployment: str, sample_fps: float | None,
               sensitivity: float | None, min_area: float | None, roi: str | None, top_k: int | None,
               model: str | None, classes: tuple[str, ...], start_time: datetime | None, stream: bool,
               in_place: bool, wait: bool, as_json: bool) -> None:
        from plugins.video_stream import routes, submission

        engine = engine_of(ctx)
        given = _settings(sample_fps, sensitivity, min_area, roi, top_k, model, classes)
        copy: Path | None = None
        try:
            context = submission.video_project(engine, project)
            settings = submission.job_settings(engine, context, given, start_time)
            submission.find_deployment(engine, context.slug, deployment)
            if "://" in source:
                kind, where, filename = submission.url_kind(source, stream or None), source, None
            elif in_place:
                kind, where, filename = "path", str(submission.checked_path(engine, source)), Path(source).name
            else:
                local = Path(source)
                if not local.is_file():
                    fail(f"{source}: no such file", EXIT_INVALID)
                copy = submission.new_upload_path(engine, local.name)
                with local.open("rb") as src, copy.open("xb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                submission.probe(engine, copy)
                kind, where, filename = "upload", str(copy), local.name
            job = submission.submit(engine, context, submission.CLI_PRINCIPAL, deployment=deployment,
                                    source_kind=kind, source=where, filename=filename, settings=settings)
        except EngineError as exc:
            if copy is not None:
                copy.unlink(missing_ok=True)
            _invalid(exc)
        shown = routes.job_out(engine, job, deployment=deployment, counts=(0, 0))
        if as_json and not wait:
            echo_json(shown)
        elif not as_json:
            click.echo(f"job {shown['id']} queued: {project}, deployment {deployment}, "
                       f"{filename or shown['source']}")
        if not wait:
            return
        try:
            ended = follow(engine, shown["id"], tty=sys.stdout.isatty() and not as_json,
                           echo=(lambda _line: None) if as_json else click.echo)
        except KeyboardInterrupt:
            click.echo(f"\nstopped watching; job {shown['id']} goes on (observatory video cancel {shown['id']} "
                       "stops it)", err=True)
            sys.exit(130)
        if as_json:
            echo_json(ended)
        else:
            _show(ended, _output_files(engine, ended["id"]))
        if ended["state"] != "done":
            sys.exit(1)

    @video.command("status", help=with_examples(
        "A job's state and progress (frames, percent, fps, time left), its gaps, error and outputs.",
        "observatory video status 7",
        "observatory video status 7 --json",
    ))
    @click.argument("job_id", metavar="JOB", type=click.IntRange(1))
    @click.option("--json", "as_json", is_flag=True, help="print the job as JSON")
    @click.option("--wait", is_flag=True, help="follow the job until it ends; exit 1 if it fails")
    @click.pass_context
    def status(ctx: click.Context, job_id: int, as_json: bool, wait: bool) -> None:
        engine = engine_of(ctx)
        job = follow(engine, job_id, tty=sys.stdout.isatty() and not as_json,
                     echo=(lambda _line: None) if as_json else click.echo) if wait else _job(engine, job_id)
        if as_json:
            echo_json(job)
        else:
            _show(job, _output_files(engine, job["id"]))
        if wait and job["state"] != "done":
            sys.exit(1)

    @video.command("cancel", help=with_examples(
        "Cancel a job: a queued one at once, a running one within a second or two (its events so far stay).",
        "observatory video cancel 7",
    ))
    @click.argument("job_id", metavar="JOB", type=click.IntRange(1))
    @click.pass_context
    def cancel(ctx: click.Context, job_id: int) -> None:
        from plugins.video_stream import jobs, routes

        engine = engine_of(ctx)
        job = _job(engine, job_id)
        if job["state"] in ("done", "failed", "cancelled"):
            fail(f"job {job_id} has ended ({job['state']}): nothing to cancel", 1)
        after = routes.job_out(engine, jobs.request_cancel(engine, job_id))
        click.echo(f"job {job_id} cancelled" if after["state"] == "cancelled" else
                   f"job {job_id}: cancel requested ({after['state']}); it stops within a second or two")

    @video.command("list", help=with_examples(
        "A project's jobs, newest first: id, state, deployment, video, progress, events.",
        "observatory video list wildlife",
        "observatory video list wildlife --state running --json",
    ))
    @click.argument("project")
    @click.option("--state", type=click.Choice(["queued", "running", "done", "failed", "cancelled"]))
    @click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="at most this many")
    @click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
    @click.pass_context
    def list_command(ctx: click.Context, project: str, state: str | None, limit: int, as_json: bool) -> None:
        from plugins.video_stream import jobs, routes, submission

        engine = engine_of(ctx)
        try:
            context = submission.video_project(engine, project)
        except EngineError as exc:
            _invalid(exc)
        rows = jobs.list_jobs(engine, context.slug, state=state, limit=limit)
        names = submission.deployment_ids(engine, {r["deployment"] for r in rows})
        for row in rows:
            job = routes.job_out(engine, row, deployment=names.get(row["deployment"]))
            if as_json:
                click.echo(json.dumps(job, default=str, ensure_ascii=False))
                continue
            percent = job["progress"]["percent"]
            click.echo("\t".join([str(job["id"]), job["state"], job["deployment"] or "-",
                                  job["filename"] or job["source"] or "-",
                                  f"{percent:.0f}%" if percent is not None else "-", f"{job['events']} event(s)",
                                  f"{job['created_at']:%Y-%m-%d %H:%M}"]))

    @video.group(help=with_examples(
        "Deployments: a camera at a place over a period (Camtrap DP's deployments).",
        "observatory video deployments add wildlife cam-01 --lat 41.412 --lon 2.131",
        "observatory video deployments list wildlife",
    ))
    def deployments() -> None:
        pass

    @deployments.command("add", help=with_examples(
        "Add a deployment to PROJECT: its DEPLOYMENT_ID (unique in the project), place and period.",
        "observatory video deployments add wildlife cam-01 --lat 41.412 --lon 2.131",
        "observatory video deployments add wildlife cam-02 --lat 41.4 --lon 2.1 --start 2026-05-01T08:00:00+02:00 "
        "--camera-model 'Reconyx HF2X' --camera-height 0.6 --no-bait --habitat 'oak forest'",
    ))
    @click.argument("project")
    @click.argument("deployment_id")
    @click.option("--lat", type=float, required=True, help="latitude, WGS84")
    @click.option("--lon", type=float, required=True, help="longitude, WGS84")
    @click.option("--name", "location_name", help="the place's name")
    @click.option("--start", help="when the camera was set up (ISO 8601 with a zone)")
    @click.option("--end", help="when it was taken down (ISO 8601 with a zone)")
    @click.option("--camera-model")
    @click.option("--camera-height", "camera_height_m", type=float, help="metres above the ground")
    @click.option("--bait/--no-bait", default=None, help="whether bait was used")
    @click.option("--habitat")
    @click.pass_context
    def deployments_add(ctx: click.Context, project: str, deployment_id: str, **fields: Any) -> None:
        from pydantic import ValidationError

        from plugins.video_stream import jobs, routes, submission

        engine = engine_of(ctx)
        try:
            body = routes.DeploymentIn.model_validate({"deployment_id": deployment_id, **fields})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "deployment"
            fail(f"{where}: {first['msg'].removeprefix('Value error, ')}", EXIT_INVALID)
        try:
            context = submission.video_project(engine, project)
            created = submission.deployment_dict(
                jobs.create_deployment(engine, context, submission.CLI_PRINCIPAL, body.model_dump()))
        except ValidationFailed as exc:
            _invalid(submission.refused_as(exc, "deployment"))
        except EngineError as exc:
            _invalid(exc)
        click.echo(f"deployment {created['deployment_id']} added to {project} "
                   f"({created['lat']}, {created['lon']})")

    @deployments.command("list", help=with_examples(
        "A project's deployments, as JSON lines.",
        "observatory video deployments list wildlife",
    ))
    @click.argument("project")
    @click.pass_context
    def deployments_list(ctx: click.Context, project: str) -> None:
        from plugins.video_stream import submission

        engine = engine_of(ctx)
        try:
            context = submission.video_project(engine, project)
        except EngineError as exc:
            _invalid(exc)
        after = None
        while True:
            rows = submission.list_deployments(engine, context.slug, after=after, limit=500)
            for row in rows:
                click.echo(json.dumps(submission.deployment_dict(row), default=str, ensure_ascii=False))
            if len(rows) < 500:
                return
            after = rows[-1].deployment_id
