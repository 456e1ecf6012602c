"""The background task ``video_stream.process``: one job, run by one worker at a time.

``run(engine, job_id)`` claims the job (``jobs.claim``), opens its source (a file, a URL, or a
live stream), feeds the sampled frames to the pipeline from the job's checkpoint (a resumed job
starts at the checkpoint's frame, never at frame 0), and for each event that ends: writes its
keyframes (faces blurred) into the job's folder, stores the event with the checkpoint that
covers it in one transaction (``jobs.store_events``; events are unique by (job, seq)), and makes
its machine observation (``observations``). Every second it renews the lease, stores progress
and reads ``cancel_requested``; every ``checkpoint_every_s`` it stores a checkpoint. At the end it
writes the outputs (summary, contact sheet, Camtrap DP, MegaDetector JSON) and records them.

A bad source (``source.VideoError``) fails the job with its code and reason; anything else that
goes wrong fails it with ``internal_error`` (the traceback is in the worker's log). Nothing but
the job, its events, its observations and its folder is ever touched.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

import cv2
import numpy as np

from core.db.models import utcnow
from core.errors import ValidationFailed
from plugins.video_stream import jobs, observations
from plugins.video_stream.jobs import LeaseLost, config_value

log = logging.getLogger(__name__)

EARLIEST_START = datetime(1970, 1, 2, tzinfo=timezone.utc)  # an unset camera clock or an MP4's 1904 epoch is no time
HEARTBEAT_S = 1.0
JPEG_QUALITY = 90


class Cancelled(Exception):
    """Someone asked the job to stop."""


class JobFailed(Exception):
    """The job cannot go on, for a reason with a code (``model_unavailable``...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def json_safe(value: Any) -> Any:
    """``value`` with numpy numbers and arrays (and times) made plain JSON."""

    def plain(item: Any) -> Any:
        if isinstance(item, np.generic):
            return item.item()
        if isinstance(item, np.ndarray):
            return item.tolist()
        if isinstance(item, datetime):
            return item.isoformat()
        if isinstance(item, tuple):
            return list(item)
        raise TypeError(f"{type(item).__name__} is not JSON")

    return json.loads(json.dumps(value, default=plain))


def plausible_start(value: datetime | None) -> datetime | None:
    """A container's start time when it can be one (cameras with unset clocks write 1904 or 1970)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value if EARLIEST_START <= value <= utcnow() + timedelta(days=1) else None


def resume_frame(checkpoint: dict[str, Any] | None, key: str = "read_from") -> int:
    """Where a resumed job reads from: its checkpoint's ``read_from`` (the pipeline re-learns the
    background on the frames before ``next_frame`` and gives no event for them), 0 for a new job."""
    if not checkpoint:
        return 0
    for name in (key, "next_frame"):
        if isinstance(checkpoint.get(name), int):
            return int(checkpoint[name])
    return 0


@dataclass
class _Clock:
    """When the worker last renewed the lease and stored a checkpoint, and the frame rate lately."""

    beat: float
    checkpoint: float
    frames_at_beat: int
    fps: float | None = None


def run(engine: Any, job_id: int) -> str:
    """The task: run job ``job_id`` if this worker can claim it; returns a line for the log."""
    token = jobs.claim(engine, int(job_id))
    if token is None:
        return f"job {job_id}: not taken (another worker runs it, or it has ended or been cancelled)"
    job = jobs.get_job(engine, int(job_id))
    assert job is not None
    return JobRun(engine, job, token).run()


class JobRun:
    """One worker's run of one claimed job."""

    def __init__(self, engine: Any, job: dict[str, Any], token: str):
        self.engine, self.job, self.token = engine, job, token
        self.id: int = job["id"]
        self.project = engine.registry.project(job["project"])
        self.settings: dict[str, Any] = job["settings"] or {}
        deployment = jobs.get_deployment(engine, job["project"], job["deployment"])
        assert deployment is not None
        self.deployment = deployment
        self.folder = jobs.jobs_root(engine) / job["uuid"]
        self.base_time: datetime | None = None  # the video's absolute start
        self.offset_s = 0.0  # a stream's seconds before this attempt began
        self.index_shift = 0  # a stream's frames before this attempt began
        now = time.monotonic()
        self.clock = _Clock(beat=now, checkpoint=now, frames_at_beat=job["frames_done"] or 0)
        self.max_fps = config_value(engine, "job_max_fps")
        self.every_s = config_value(engine, "checkpoint_every_s")
        self.started = now

    # -- the whole run ------------------------------------------------------------------------

    def run(self) -> str:
        try:
            if self.job["cancel_requested"]:
                raise Cancelled
            if self.job["checkpoint"]:
                log.info("video_stream: resuming job %s at frame %s, reading from frame %s (%s frames done, attempt %s)",
                         self.id, resume_frame(self.job["checkpoint"], "next_frame"),
                         resume_frame(self.job["checkpoint"]), self.job["frames_done"], self.job["attempts"])
                self._observe(jobs.job_events(self.engine, self.id))  # those a dead worker left without one
            frames = self._process_stream() if self.job["source_kind"] == "stream" else self._process_file()
            outputs = self._write_outputs()
            jobs.finish(self.engine, self.id, self.token, "done", frames_done=frames, frames_total=frames,
                        outputs=outputs, fps=self.clock.fps)
            return f"job {self.id}: done, {frames} frames"
        except Cancelled:
            jobs.finish(self.engine, self.id, self.token, "cancelled")
            return f"job {self.id}: cancelled"
        except LeaseLost:
            log.warning("video_stream: job %s was taken over or ended while this worker ran it; stopped", self.id)
            return f"job {self.id}: lease lost"
        except Exception as exc:  # noqa: BLE001 (whatever it is, the job fails and says why)
            code, message = self._failure(exc)
            try:
                jobs.finish(self.engine, self.id, self.token, "failed", error_code=code, error=message)
            except Exception:  # noqa: BLE001
                log.exception("video_stream: job %s failed and its failure could not be stored", self.id)
            return f"job {self.id}: failed ({code}): {message}"

    def _failure(self, exc: Exception) -> tuple[str, str]:
        from plugins.video_stream.source import VideoError

        if isinstance(exc, (VideoError, JobFailed)):
            return exc.code, exc.message
        if isinstance(exc, ValidationFailed):
            return "observation_refused", f"the engine refused an event's observation: {exc.message}"
        if isinstance(exc, OutputFailed):
            log.exception("video_stream: job %s: an output could not be written", self.id)
            return "output_failed", str(exc)
        log.exception("video_stream: job %s failed", self.id)
        return "internal_error", f"{type(exc).__name__}: {exc} (the worker's log has the details)"

    # -- sources --------------------------------------------------------------------------------

    def _detection_settings(self) -> Any:
        from plugins.video_stream.pipeline import DetectionSettings

        return DetectionSettings.of(self.settings)

    def _pipeline(self, info: Any) -> Any:
        from plugins.video_stream.classify import species_classifier
        from plugins.video_stream.pipeline import Pipeline

        try:
            classify = species_classifier(self.engine, self.settings)
        except Exception as exc:  # noqa: BLE001 (no model file, an unknown model name...)
            raise JobFailed("model_unavailable", f"species_id's model cannot be loaded: {exc}") from exc
        return Pipeline(self._detection_settings(), info, classify, checkpoint=self.job["checkpoint"] or None)

    def _open(self) -> Any:
        from plugins.video_stream.source import check_path, open_url, open_video

        max_pixels = int(config_value(self.engine, "max_pixels") or 3840 * 2160)
        kind, source = self.job["source_kind"], self.job["source"]
        if kind == "url":
            return open_url(source, max_pixels=max_pixels,
                            open_timeout_s=float(config_value(self.engine, "stream_open_timeout_s") or 10),
                            read_timeout_s=float(config_value(self.engine, "stream_read_timeout_s") or 10))
        if kind == "path":  # the operator may have narrowed the folders since the job was made
            return open_video(check_path(source, list(config_value(self.engine, "allowed_folders") or [])),
                              max_pixels=max_pixels)
        return open_video(Path(source), max_pixels=max_pixels)

    @staticmethod
    def _video_info(info: Any, base: datetime, base_source: str) -> dict[str, Any]:
        """The job's ``video``: what the source says of itself (``VideoInfo.as_dict``), with
        ``start_time`` the absolute start the events are timed from and where it comes from."""
        video = dict(info.as_dict())
        video.update(metadata_start_time=video.get("start_time"), start_time=base.isoformat(),
                     start_time_source=base_source)
        return json_safe(video)

    def _time_base(self, info: Any) -> tuple[datetime, str]:
        """The video's absolute start: its metadata's, else the job's start time setting, else
        when the job was made (flagged as an estimate)."""
        found = plausible_start(info.start_time)
        if found is not None:
            return found, "metadata"
        if self.settings.get("start_time"):
            return datetime.fromisoformat(self.settings["start_time"]), "setting"
        return self.job["created_at"], "job_created"

    def _process_file(self) -> int:
        sample_fps = float(self.settings.get("sample_fps", 2.0))
        with self._open() as source:
            info = source.info
            self.base_time, base_source = self._time_base(info)
            total = jobs.expected_samples(info.fps, info.frame_count, sample_fps)
            self.job["video"] = self._video_info(info, self.base_time, base_source)
            self._beat(self.job["frames_done"] or 0, force=True, video=self.job["video"], frames_total=total)
            pipeline = self._pipeline(info)
            self._beat(None, force=True)  # loading the model may have taken a while
            start = resume_frame(self.job["checkpoint"])
            return self._feed(pipeline, source.frames(sample_fps=sample_fps, start_frame=start))

    def _process_stream(self) -> int:
        from plugins.video_stream.source import VideoInfo
        from plugins.video_stream.stream import stream_frames

        sample_fps = float(self.settings.get("sample_fps", 2.0))
        now = utcnow()
        video = dict(self.job.get("video") or {})
        self.base_time = datetime.fromisoformat(video["start_time"]) if video.get("start_time") else now
        self.offset_s = (now - self.base_time).total_seconds()
        self.index_shift = resume_frame(self.job["checkpoint"], "next_frame")
        window_s = float(config_value(self.engine, "stream_window_s") or 300)
        frames = stream_frames(
            self.job["source"], sample_fps=sample_fps,
            open_timeout_s=float(config_value(self.engine, "stream_open_timeout_s") or 10),
            read_timeout_s=float(config_value(self.engine, "stream_read_timeout_s") or 10),
            should_stop=self._should_stop, on_gap=self._on_gap,
            max_pixels=int(config_value(self.engine, "max_pixels") or 3840 * 2160))
        frames = iter(frames)
        first = next(frames, None)
        if first is None:
            return self.job["frames_done"] or 0
        height, width = first.image.shape[:2]
        info = VideoInfo(fps=sample_fps, width=width, height=height, frame_count=None, duration_s=None,
                         start_time=self.base_time)
        self.job["video"] = self._video_info(info, self.base_time, "stream_clock")
        self._beat(self.job["frames_done"] or 0, force=True, video=self.job["video"])
        pipeline = self._pipeline(info)
        self._beat(None, force=True)
        return self._feed(pipeline, self._chain(first, frames), window_s=window_s)

    @staticmethod
    def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
        yield first
        yield from rest

    def _shifted(self, frames: Iterable[Any]) -> Iterator[Any]:
        """A resumed stream's frames, numbered and timed after those of the earlier attempts."""
        if not self.offset_s and not self.index_shift:
            yield from frames
            return
        from plugins.video_stream.source import Frame

        for frame in frames:
            yield Frame(index=frame.index + self.index_shift, t=frame.t + self.offset_s, image=frame.image)

    def _should_stop(self) -> bool:
        return self._beat(None)

    def _on_gap(self, gap: dict[str, Any]) -> None:
        jobs.add_gap(self.engine, self.id, self.token, json_safe(gap))

    # -- the frame loop ---------------------------------------------------------------------------

    def _feed(self, pipeline: Any, frames: Iterable[Any], window_s: float | None = None) -> int:
        """Feed ``frames``; store events as they end; returns the frames done in all."""
        window_end = time.monotonic() + window_s if window_s else None
        stopping = False
        for frame in self._shifted(frames) if self.job["source_kind"] == "stream" else frames:
            ended = pipeline.feed(frame)
            done = int(pipeline.frames_seen)
            if ended:
                self._store(pipeline, ended, done)
            if self._beat(done, pipeline=pipeline) or self._throttle(done):
                if self.job["source_kind"] != "stream":
                    raise Cancelled
                stopping = True
                break
            if window_end is not None and time.monotonic() >= window_end:
                self._write_outputs()  # a live stream's outputs so far, once a window
                window_end = time.monotonic() + (window_s or 0)
        ended = pipeline.finish()
        done = int(pipeline.frames_seen)
        self._store(pipeline, ended, done)
        if stopping:
            log.info("video_stream: stream job %s stopped as asked after %s frames", self.id, done)
        return done

    def _throttle(self, done: int) -> bool:
        """Keep to ``job_max_fps`` (an operator's limit that leaves the CPU to other work), still
        renewing the lease while waiting; returns whether a cancel was asked for meanwhile."""
        if self.max_fps <= 0:
            return False
        while True:
            ahead = (done - (self.job["frames_done"] or 0)) / self.max_fps - (time.monotonic() - self.started)
            if ahead <= 0:
                return False
            time.sleep(min(ahead, HEARTBEAT_S / 2))
            if self._beat(done):
                return True

    def _beat(self, done: int | None, *, force: bool = False, pipeline: Any = None, **more: Any) -> bool:
        """Renew the lease, store progress (and a checkpoint when one is due) about once a second;
        returns whether a cancel was asked for."""
        now = time.monotonic()
        if not force and now - self.clock.beat < HEARTBEAT_S:
            return False
        if done is not None and now > self.clock.beat:
            rate = (done - self.clock.frames_at_beat) / (now - self.clock.beat)
            self.clock.fps = rate if self.clock.fps is None else 0.5 * self.clock.fps + 0.5 * rate
            self.clock.frames_at_beat = done
        self.clock.beat = now
        checkpoint = None
        if pipeline is not None and now - self.clock.checkpoint >= self.every_s:
            checkpoint = json_safe(pipeline.checkpoint())
            self.clock.checkpoint = now
        return jobs.heartbeat(self.engine, self.id, self.token, frames_done=done, fps=self.clock.fps,
                              checkpoint=checkpoint, **more)

    # -- events ----------------------------------------------------------------------------------

    def _store(self, pipeline: Any, ended: list[Any], done: int) -> None:
        """Keyframes written, then the events and the checkpoint after them in one transaction,
        then their observations."""
        rows = [self._event_row(event) for event in ended]
        checkpoint = json_safe(pipeline.checkpoint())
        jobs.store_events(self.engine, self.id, self.token, rows, checkpoint=checkpoint, frames_done=done,
                          fps=self.clock.fps)
        self.clock.checkpoint = time.monotonic()
        if rows:
            stored = jobs.job_events(self.engine, self.id)
            seqs = {r["seq"] for r in rows}
            self._observe([e for e in stored if e["seq"] in seqs])

    def _observe(self, rows: list[dict[str, Any]]) -> None:
        pending = [r for r in rows if not r.get("observation_id")]
        if pending:
            observations.make_observations(self.engine, self.job, self.deployment, pending, self.folder)

    def _event_row(self, event: Any) -> dict[str, Any]:
        from plugins.video_stream.blur import blur_faces

        keyframes = []
        folder = self.folder / "keyframes"
        folder.mkdir(parents=True, exist_ok=True)
        for frame_index, t, image in event.keyframes:
            name = f"keyframes/{event.seq:05d}-{int(frame_index):07d}.jpg"
            # a person's head is blurred from their box too, where their face is too small to find
            people = [b["bbox"] for b in event.boxes if event.category == "human" and b.get("frame") == frame_index]
            blurred = blur_faces(image, people=people)
            ok, data = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if not ok:
                raise RuntimeError(f"keyframe {name} could not be encoded")
            (self.folder / name).write_bytes(data.tobytes())
            keyframes.append({"frame": int(frame_index), "t": float(t), "file": name})
        base = self.base_time
        return json_safe({
            "seq": int(event.seq), "start_frame": int(event.start_frame), "end_frame": int(event.end_frame),
            "start_s": float(event.start_s), "end_s": float(event.end_s), "category": event.category,
            "top_k": event.top_k, "count": int(event.count), "boxes": event.boxes, "keyframes": keyframes,
        }) | {"start_time": base + timedelta(seconds=float(event.start_s)) if base else None,
              "end_time": base + timedelta(seconds=float(event.end_s)) if base else None}

    # -- outputs ---------------------------------------------------------------------------------

    def _write_outputs(self) -> dict[str, str]:
        job = jobs.get_job(self.engine, self.id) or self.job
        try:
            written = write_outputs(self.project, self.deployment, job, jobs.job_events(self.engine, self.id),
                                    self.folder)
        except Exception as exc:
            raise OutputFailed(f"{type(exc).__name__}: {exc}") from exc
        jobs.heartbeat(self.engine, self.id, self.token, outputs=written)
        return written


class OutputFailed(Exception):
    """An output could not be written."""


OUTPUTS = "outputs"
CONTACT_SHEET_EVENTS = 64  # the contact sheet shows the first keyframe of the first 64 events


def video_name(job: dict[str, Any]) -> str:
    """The name the outputs give the video: the upload's name, else the file's or the URL's."""
    if job.get("filename"):
        return str(job["filename"])
    source = jobs.shown_source(job["source_kind"], job["source"])
    name = Path(source.split("?", 1)[0].rstrip("/")).name
    return name or "video"


def write_outputs(project: Any, deployment: dict[str, Any], job: dict[str, Any], events: list[dict[str, Any]],
                  folder: Path) -> dict[str, str]:
    """Write every output of the job into ``<folder>/outputs`` (written again whole: a resumed job
    or a stream's next window replaces them); returns output name -> path under ``folder``."""
    import csv
    import io
    import shutil

    from plugins.video_stream.camtrap import write_camtrap_dp
    from plugins.video_stream.contact_sheet import contact_sheet
    from plugins.video_stream.megadetector import megadetector_json
    from plugins.video_stream.summary import summary_rows

    out = folder / OUTPUTS
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}

    def put(name: str, data: bytes | str) -> None:
        path = out / name
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        tmp.replace(path)
        written[name] = f"{OUTPUTS}/{name}"

    rows = summary_rows(events)
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    put("summary.csv", text.getvalue())
    put("summary.json", json.dumps(json_safe(rows), indent=1))
    put("megadetector.json", json.dumps(megadetector_json(job=job, events=events, video_name=video_name(job)),
                                        indent=1))
    put("contact_sheet.png", contact_sheet(_sheet_keyframes(events, folder)))
    package = out / "camtrap-dp"
    if package.exists():
        shutil.rmtree(package)
    made = Path(write_camtrap_dp(package, project=project, deployment=deployment, job=job, events=events))
    zips = sorted(p for p in (made.with_suffix(".zip"), package.with_suffix(".zip")) if p.is_file())
    if not zips:
        zips = [Path(shutil.make_archive(str(package), "zip", root_dir=made))]
    if zips[0] != out / "camtrap-dp.zip":
        zips[0].replace(out / "camtrap-dp.zip")
    written["camtrap-dp"] = f"{OUTPUTS}/{made.relative_to(out).as_posix()}" if made.is_relative_to(out) else str(made)
    written["camtrap-dp.zip"] = f"{OUTPUTS}/camtrap-dp.zip"
    return written


def _sheet_keyframes(events: list[dict[str, Any]], folder: Path) -> list[tuple[np.ndarray, list[dict], str]]:
    """Each event's first keyframe (as stored: faces blurred), its boxes on that frame, a label."""
    sheet = []
    for event in events[:CONTACT_SHEET_EVENTS]:
        for key in event["keyframes"][:1]:
            image = cv2.imread(str(folder / key["file"]))
            if image is None:
                continue
            boxes = [b for b in event["boxes"] if b.get("frame") == key["frame"]]
            top = (event["top_k"] or [{}])[0]
            name = top.get("label") or top.get("scientific_name") or event["category"]
            score = f" {top['score']:.0%}" if isinstance(top.get("score"), (int, float)) else ""
            sheet.append((image, boxes, f"#{event['seq']} {name}{score} {event['start_s']:.1f}s"))
    return sheet
