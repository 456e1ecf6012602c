"""video_stream's job store: deployments and jobs checked and stored, the lease a worker claims in
one conditional update, heartbeats and checkpointed events that a worker who lost its lease
cannot write, cancellation, progress, and the person's data (export and erasure)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from core.db.models import utcnow
from core.errors import Conflict, NotFound, ValidationFailed
from plugins.video_stream import jobs
from plugins.video_stream.db import deployments, events, jobs as jobs_table


def count(engine, table) -> int:
    with engine.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def a_video(videos, name="a.mp4") -> str:
    path = videos / name
    path.write_bytes(b"not read before a worker runs the job")
    return str(path)


def new_job(engine, made, videos, **kwargs) -> dict:
    values = {"project": "cams", "deployment": made["id"], "source_kind": "upload",
              "source": a_video(videos), "filename": "a.mp4", "settings": {}, "principal": None, "start": False}
    values.update(kwargs)
    return jobs.create_job(engine, **values)


def event_row(seq: int) -> dict:
    return {"seq": seq, "start_frame": 10 * seq, "end_frame": 10 * seq + 5, "start_s": 1.0 * seq,
            "end_s": 1.0 * seq + 0.5, "category": "animal", "top_k": [], "count": 1, "boxes": [], "keyframes": []}


# -- deployments ---------------------------------------------------------------------------------


def test_a_deployment_is_stored_with_its_times_in_utc(engine, deployment):
    assert deployment["deployment_id"] == "CAM-01"
    assert deployment["project"] == "cams"
    assert (deployment["lat"], deployment["lon"]) == (41.4168, 2.1024)
    assert deployment["start"].isoformat() == "2026-04-01T06:00:00+00:00"
    assert deployment["end"] - deployment["start"] == timedelta(days=61)
    assert jobs.get_deployment(engine, "cams", "CAM-01")["id"] == deployment["id"]
    assert jobs.get_deployment(engine, "quiet", "CAM-01") is None


def test_a_time_without_an_offset_is_the_projects_local_time(engine):
    made = jobs.create_deployment(engine, "cams", None, {"deployment_id": "C2", "lat": 41, "lon": 2,
                                                         "start": "2026-07-01T10:00:00"})
    assert made["start"].isoformat() == "2026-07-01T08:00:00+00:00"  # Europe/Madrid in summer


@pytest.mark.parametrize("data, where", [
    ({"deployment_id": "X", "lat": 91, "lon": 2}, "lat"),
    ({"deployment_id": "X", "lat": 41, "lon": -180.5}, "lon"),
    ({"deployment_id": "X", "lat": "41", "lon": 2}, "lat"),
    ({"deployment_id": "X", "lat": True, "lon": 2}, "lat"),
    ({"deployment_id": "", "lat": 41, "lon": 2}, "deployment_id"),
    ({"deployment_id": "X\n", "lat": 41, "lon": 2}, "deployment_id"),
    ({"lat": 41, "lon": 2}, "deployment_id"),
    ({"deployment_id": "X", "lat": 41, "lon": 2, "colour": "green"}, "colour"),
    ({"deployment_id": "X", "lat": 41, "lon": 2, "camera_height_m": -1}, "camera_height_m"),
    ({"deployment_id": "X", "lat": 41, "lon": 2, "start": "2026-05-02T00:00:00Z", "end": "2026-05-01T00:00:00Z"},
     ""),
    ({"deployment_id": "X", "lat": 41, "lon": 2, "start": "yesterday"}, "start"),
])
def test_a_bad_deployment_is_refused_and_nothing_is_stored(engine, data, where):
    with pytest.raises(ValidationFailed) as refused:
        jobs.create_deployment(engine, "cams", None, data)
    assert any(".".join(p.path) == where for p in refused.value.problems), refused.value.problems
    assert count(engine, deployments) == 0


def test_a_deployment_id_is_unique_in_its_project(engine, deployment):
    with pytest.raises(Conflict) as refused:
        jobs.create_deployment(engine, "cams", None, {"deployment_id": "CAM-01", "lat": 40, "lon": 1})
    assert refused.value.code == "deployment_exists"
    assert count(engine, deployments) == 1


def test_a_project_without_video_has_no_deployments(engine):
    with pytest.raises(jobs.JobRefused) as refused:
        jobs.create_deployment(engine, "quiet", None, {"deployment_id": "Q", "lat": 40, "lon": 1})
    assert refused.value.code == "service_not_enabled"
    with pytest.raises(NotFound):
        jobs.create_deployment(engine, "nowhere", None, {"deployment_id": "Q", "lat": 40, "lon": 1})
    assert count(engine, deployments) == 0


# -- jobs ----------------------------------------------------------------------------------------


def test_a_job_is_queued_with_the_projects_settings_under_its_own(engine, deployment, videos):
    job = new_job(engine, deployment, videos, settings={"sensitivity": 0.8,
                                                        "start_time": "2026-05-01T06:30:00+02:00"})
    assert job["state"] == "queued" and job["frames_done"] == 0 and not job["cancel_requested"]
    assert job["settings"]["sample_fps"] == 5  # the project's
    assert job["settings"]["sensitivity"] == 0.8  # the job's
    assert job["settings"]["min_area"] == 0.002  # the service's default
    assert job["settings"]["start_time"] == "2026-05-01T04:30:00+00:00"
    assert len(job["uuid"]) == 36
    assert jobs.get_job(engine, job["uuid"])["id"] == job["id"]
    assert jobs.job_folder(engine, job["id"]) == engine.settings.data_dir / "video_stream" / "jobs" / job["uuid"]
    assert jobs.job_progress(job) == {"state": "queued", "frames_done": 0, "frames_total": None, "percent": None,
                                      "fps": None, "eta_s": None, "error": None, "error_code": None}


def test_a_urls_password_is_never_shown(engine, deployment, videos):
    job = new_job(engine, deployment, videos, source_kind="stream", source="rtsp://cam:s3cret@10.0.0.7:554/live")
    assert job["source_shown"] == "rtsp://10.0.0.7:554/live"
    assert "s3cret" not in str(jobs.list_jobs(engine, "cams")[0]["source_shown"])


@pytest.mark.parametrize("change, error, code", [
    ({"deployment": 10_000}, NotFound, "unknown_deployment"),
    ({"deployment": "CAM-99"}, NotFound, "unknown_deployment"),
    ({"project": "quiet"}, jobs.JobRefused, "service_not_enabled"),
    ({"source_kind": "carrier-pigeon"}, jobs.JobRefused, "invalid_source_kind"),
    ({"source_kind": "url", "source": "ftp://example.org/a.mp4"}, jobs.JobRefused, "invalid_url"),
    ({"source_kind": "url", "source": "http:///a.mp4"}, jobs.JobRefused, "invalid_url"),
    ({"source_kind": "upload", "source": "/nowhere/at/all.mp4"}, jobs.JobRefused, "not_found"),
    ({"settings": {"sample_fps": 0}}, ValidationFailed, "validation_failed"),
    ({"settings": {"sensitivity": 2}}, ValidationFailed, "validation_failed"),
    ({"settings": {"roi": [0, 0, 1]}}, ValidationFailed, "validation_failed"),
    ({"settings": {"speed": "fast"}}, ValidationFailed, "validation_failed"),
    ({"settings": {"start_time": "at dawn"}}, ValidationFailed, "validation_failed"),
    ({"settings": {"start_time": "1850-01-01T00:00:00Z"}}, ValidationFailed, "validation_failed"),
])
def test_a_bad_job_is_refused_with_its_reason_and_nothing_is_stored(engine, deployment, videos, change, error, code):
    with pytest.raises(error) as refused:
        new_job(engine, deployment, videos, **change)
    assert refused.value.code == code
    assert count(engine, jobs_table) == 0


def test_a_path_outside_the_allowed_folders_is_refused(engine, deployment, videos, tmp_path):
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(b"x")
    for source in (str(outside), str(videos / ".." / "elsewhere.mp4")):
        with pytest.raises(jobs.JobRefused) as refused:
            new_job(engine, deployment, videos, source_kind="path", source=source)
        assert refused.value.code == "path_not_allowed"
    job = new_job(engine, deployment, videos, source_kind="path", source=a_video(videos, "inside.mp4"))
    assert job["source"] == str((videos / "inside.mp4").resolve())
    assert count(engine, jobs_table) == 1


def test_jobs_are_listed_newest_first_and_paged(engine, deployment, videos):
    made = [new_job(engine, deployment, videos)["id"] for _ in range(3)]
    assert [j["id"] for j in jobs.list_jobs(engine, "cams")] == made[::-1]
    assert [j["id"] for j in jobs.list_jobs(engine, "cams", limit=2)] == made[:0:-1]
    assert [j["id"] for j in jobs.list_jobs(engine, "cams", before_id=made[1])] == made[:1]
    jobs.request_cancel(engine, made[0])
    assert [j["id"] for j in jobs.list_jobs(engine, "cams", state="cancelled")] == made[:1]
    assert jobs.list_jobs(engine, "quiet") == []


# -- the lease -----------------------------------------------------------------------------------


def test_only_one_of_two_workers_claims_a_job(engine, deployment, videos):
    job = new_job(engine, deployment, videos)
    tokens: list[str | None] = []
    barrier = threading.Barrier(2)

    def take() -> None:
        barrier.wait()
        tokens.append(jobs.claim(engine, job["id"]))

    threads = [threading.Thread(target=take) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(t is not None for t in tokens) == 1
    claimed = jobs.get_job(engine, job["id"])
    assert claimed["state"] == "running" and claimed["attempts"] == 1
    assert claimed["lease_until"] > utcnow() + timedelta(seconds=20)
    assert claimed["started_at"] is not None


def test_a_job_whose_lease_ran_out_is_taken_over_and_the_old_worker_can_write_nothing(engine, deployment, videos):
    job = new_job(engine, deployment, videos)
    old = jobs.claim(engine, job["id"])
    assert jobs.claim(engine, job["id"]) is None  # its lease holds
    jobs.store_events(engine, job["id"], old, [event_row(1)], checkpoint={"next_frame": 20}, frames_done=4)
    with engine.db.begin() as conn:  # the old worker stopped renewing it
        conn.execute(update(jobs_table).values(lease_until=utcnow() - timedelta(seconds=1)))
    new = jobs.claim(engine, job["id"])
    assert new is not None and new != old
    with pytest.raises(jobs.LeaseLost):
        jobs.heartbeat(engine, job["id"], old, frames_done=99)
    with pytest.raises(jobs.LeaseLost):
        jobs.store_events(engine, job["id"], old, [event_row(2)], checkpoint={"next_frame": 90}, frames_done=99)
    assert not jobs.finish(engine, job["id"], old, "done")
    taken = jobs.get_job(engine, job["id"])
    assert (taken["state"], taken["frames_done"], taken["checkpoint"], taken["attempts"]) == (
        "running", 4, {"next_frame": 20}, 2)
    assert [e["seq"] for e in jobs.job_events(engine, job["id"])] == [1]


def test_events_are_stored_once_with_the_checkpoint_that_covers_them(engine, deployment, videos):
    job = new_job(engine, deployment, videos)
    token = jobs.claim(engine, job["id"])
    assert jobs.store_events(engine, job["id"], token, [event_row(1), event_row(2)], checkpoint={"next_frame": 30},
                             frames_done=6) == 2
    # met again after a resume from an older checkpoint: kept once
    assert jobs.store_events(engine, job["id"], token, [event_row(2), event_row(3)], checkpoint={"next_frame": 40},
                             frames_done=8) == 1
    assert [e["seq"] for e in jobs.job_events(engine, job["id"])] == [1, 2, 3]
    stored = jobs.get_job(engine, job["id"])
    assert (stored["checkpoint"], stored["frames_done"]) == ({"next_frame": 40}, 8)
    assert count(engine, events) == 3


def test_heartbeats_keep_the_lease_and_the_progress(engine, deployment, videos):
    job = new_job(engine, deployment, videos)
    token = jobs.claim(engine, job["id"])
    before = jobs.get_job(engine, job["id"])["lease_until"]
    assert jobs.heartbeat(engine, job["id"], token, frames_done=25, fps=12.5, frames_total=100) is False
    beat = jobs.get_job(engine, job["id"])
    assert beat["lease_until"] >= before
    assert jobs.job_progress(beat) == {"state": "running", "frames_done": 25, "frames_total": 100, "percent": 25.0,
                                       "fps": 12.5, "eta_s": 6.0, "error": None, "error_code": None}
    assert jobs.finish(engine, job["id"], token, "failed", error_code="truncated", error="the file stops at 12 s")
    failed = jobs.get_job(engine, job["id"])
    assert (failed["state"], failed["lease_token"], failed["finished_at"] is not None) == ("failed", None, True)
    assert jobs.job_progress(failed)["error_code"] == "truncated"
    assert jobs.job_progress(failed)["eta_s"] is None


# -- cancel --------------------------------------------------------------------------------------


def test_a_queued_job_is_cancelled_at_once_and_no_worker_takes_it(engine, deployment, videos):
    job = new_job(engine, deployment, videos)
    cancelled = jobs.request_cancel(engine, job["id"])
    assert (cancelled["state"], cancelled["cancel_requested"]) == ("cancelled", True)
    assert jobs.claim(engine, job["id"]) is None
    assert jobs.request_cancel(engine, job["id"])["state"] == "cancelled"  # asking again is harmless


def test_a_running_job_is_asked_to_stop_and_its_worker_hears_it(engine, deployment, videos):
    job = new_job(engine, deployment, videos)
    token = jobs.claim(engine, job["id"])
    asked = jobs.request_cancel(engine, job["id"])
    assert (asked["state"], asked["cancel_requested"]) == ("running", True)
    assert jobs.heartbeat(engine, job["id"], token, frames_done=3) is True


def test_an_ended_job_cannot_be_cancelled(engine, deployment, videos):
    job = new_job(engine, deployment, videos)
    token = jobs.claim(engine, job["id"])
    jobs.finish(engine, job["id"], token, "done")
    with pytest.raises(Conflict) as refused:
        jobs.request_cancel(engine, job["id"])
    assert refused.value.code == "job_ended"
    assert jobs.get_job(engine, job["id"])["state"] == "done"
    with pytest.raises(NotFound):
        jobs.request_cancel(engine, 10_000)


# -- the person's data ---------------------------------------------------------------------------


def test_a_persons_jobs_are_in_their_export_and_forgotten_when_they_are_erased(engine, videos, make_token):
    import io
    import json
    import zipfile

    from core import gdpr
    from core.tokens import authenticate

    principal = authenticate(engine, make_token("admin", "cams"))
    made = jobs.create_deployment(engine, "cams", principal, {"deployment_id": "MINE", "lat": 41, "lon": 2})
    new_job(engine, made, videos, principal=principal, source_kind="url", source="https://me:pw@example.org/cam.mp4")
    out = io.BytesIO()
    gdpr.write_export(engine, principal.account_id, out)
    mine = json.loads(zipfile.ZipFile(out).read("plugins/video_stream.json"))
    assert [d["deployment_id"] for d in mine["deployments"]] == ["MINE"]
    assert mine["jobs"][0]["source"] == "https://example.org/cam.mp4"
    assert "pw@" not in json.dumps(mine)
    gdpr.erase(engine, principal.account_id)
    assert jobs.get_deployment(engine, "cams", "MINE")["created_by"] is None
    assert jobs.list_jobs(engine, "cams")[0]["created_by"] is None


# -- recovery ------------------------------------------------------------------------------------


def expire(engine, job_id: int) -> None:
    with engine.db.begin() as conn:
        conn.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                     .values(lease_until=utcnow() - timedelta(seconds=1)))


def test_a_queued_job_whose_message_was_lost_is_sent_again(engine, deployment, videos):
    from plugins.video_stream import recovery

    lost = new_job(engine, deployment, videos)  # stored, never sent (start=False)
    waiting = new_job(engine, deployment, videos)
    assert recovery.recover_work(engine) == 0  # not yet: queued jobs wait resend_after_s
    expire(engine, lost["id"])
    assert recovery.recover_work(engine) == 1
    assert engine.dispatcher.flush(30)
    ran = jobs.get_job(engine, lost["id"])
    # it ran (the file is no video): a worker took it, and said why it failed
    assert (ran["state"], ran["error_code"], ran["attempts"]) == ("failed", "not_a_video", 1)
    assert jobs.get_job(engine, waiting["id"])["state"] == "queued"  # the other one was not touched


def test_a_job_whose_worker_keeps_dying_fails_as_worker_lost(engine, deployment, videos):
    from plugins.video_stream import recovery

    job = new_job(engine, deployment, videos)
    done = new_job(engine, deployment, videos)
    jobs.finish(engine, done["id"], jobs.claim(engine, done["id"]), "done")
    for _ in range(jobs.DEFAULTS["max_attempts"]):
        assert jobs.claim(engine, job["id"]) is not None
        expire(engine, job["id"])
    assert recovery.recover_work(engine) == 0
    lost = jobs.get_job(engine, job["id"])
    assert (lost["state"], lost["error_code"], lost["lease_token"]) == ("failed", "worker_lost", None)
    assert "stopped 5 times" in lost["error"]
    assert jobs.get_job(engine, done["id"])["state"] == "done"
