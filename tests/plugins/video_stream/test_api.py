"""video_stream's API: deployments, submitting jobs (multipart, path, URL, tus upload), who may,
and bad input refused with a clear code while nothing is stored (no job, no file left behind)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pytest
import skimage.data
from sqlalchemy import func, select

from core.testing import bearer
from tests.plugins.video_stream.conftest import video_registry
from tests.plugins.video_stream.synth import truncate, write_video

API = "/api/v1"
DEPLOYMENTS = f"{API}/projects/cams/video/deployments"
JOBS = f"{API}/projects/cams/video/jobs"


class Held:
    """A dispatcher that keeps background tasks instead of running them: jobs stay queued."""

    def __init__(self) -> None:
        from core.dispatch import InlineDispatcher

        self.inline = InlineDispatcher()
        self.tasks: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, engine: Any, enrichments: list[tuple[int, str]]) -> None:
        self.inline.enqueue(engine, enrichments)

    def assess(self, engine: Any, observation_id: int, *, due_only: bool = False) -> None:
        self.inline.assess(engine, observation_id, due_only=due_only)

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def start_task(self, engine: Any, name: str, kwargs: dict[str, Any]) -> None:
        self.tasks.append((name, kwargs))


@pytest.fixture
def held() -> Held:
    return Held()


@pytest.fixture
def engine(make_engine: Any, held: Held, registry: str) -> Any:
    """Jobs are stored and stay queued: these tests are about what is accepted and refused."""
    return make_engine(registry, dispatcher=held)


@pytest.fixture
def staff(make_token: Any) -> dict[str, str]:
    return bearer(make_token("admin", "cams"))


def stored(engine: Any) -> tuple[int, list[str]]:
    """How many jobs are stored, and the files left in the uploads folder."""
    from plugins.video_stream.db import jobs
    from plugins.video_stream.submission import uploads_dir

    with engine.db.connect() as conn:
        count = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
    folder = uploads_dir(engine)
    return count, sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    codes = [error["code"], *(d.get("code") for d in error.get("details") or [])]
    assert code in codes, error
    return error


@pytest.fixture
def clip(videos: Path) -> Path:
    """A 4 s video with the cat crossing once, inside the allowed folder."""
    path = videos / "clip.mp4"
    write_video(path, seconds=4, fps=10, passes=[(1, 2, "cat", "ltr")])
    return path


# -- deployments --------------------------------------------------------------------------------

CAM = {"deployment_id": "cam-01", "location_name": "Fox path", "lat": 41.412, "lon": 2.131,
       "start": "2026-05-01T08:00:00+02:00", "end": "2026-05-15T08:00:00+02:00", "camera_model": "Reconyx HF2X",
       "camera_height_m": 0.6, "bait": False, "habitat": "oak forest"}


def test_staff_add_and_list_deployments(client, staff):
    made = client.post(DEPLOYMENTS, json=CAM, headers=staff)
    assert made.status_code == 201, made.text
    assert made.json()["deployment_id"] == "cam-01" and made.json()["start"].startswith("2026-05-01T06:00:00")
    client.post(DEPLOYMENTS, json={**CAM, "deployment_id": "cam-02"}, headers=staff)
    page = client.get(DEPLOYMENTS, params={"per_page": 1}, headers=staff).json()
    assert [d["deployment_id"] for d in page["items"]] == ["cam-01"] and page["next_cursor"] == "cam-01"
    rest = client.get(DEPLOYMENTS, params={"cursor": "cam-01"}, headers=staff).json()
    assert [d["deployment_id"] for d in rest["items"]] == ["cam-02"] and rest["next_cursor"] is None
    assert "created_by" not in made.json()


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"lat": 91}, 422, "invalid_request"),
    ({"lon": "east"}, 422, "invalid_request"),
    ({"end": "2026-04-01T08:00:00+02:00"}, 422, "invalid_request"),
    ({"deployment_id": ""}, 422, "invalid_request"),
    ({"colour": "green"}, 422, "invalid_request"),
])
def test_a_bad_deployment_is_refused(client, staff, engine, change, status, code):
    refused(client.post(DEPLOYMENTS, json={**CAM, **change}, headers=staff), status, code)
    assert client.get(DEPLOYMENTS, headers=staff).json()["items"] == []


def test_a_deployment_id_is_unique_in_its_project(client, staff):
    assert client.post(DEPLOYMENTS, json=CAM, headers=staff).status_code == 201
    refused(client.post(DEPLOYMENTS, json={**CAM, "lat": 0}, headers=staff), 409, "deployment_exists")
    assert client.get(DEPLOYMENTS, headers=staff).json()["items"][0]["lat"] == 41.412


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("contributor", 403), ("expert", 403),
                                              ("moderator", 201), ("admin", 201), ("operator", 201)])
def test_who_may_add_a_deployment(client, make_token, role, status):
    headers = bearer(make_token(role, None if role == "operator" else "cams")) if role else {}
    response = client.post(DEPLOYMENTS, json=CAM, headers=headers)
    assert response.status_code == status, response.text
    listed = client.get(DEPLOYMENTS, headers=headers)
    assert listed.status_code == (200 if status == 201 else status)


def test_a_project_without_video_or_unknown(client, make_token):
    operator = bearer(make_token("operator"))
    refused(client.post(f"{API}/projects/quiet/video/deployments", json=CAM, headers=operator), 404, "video_off")
    refused(client.get(f"{API}/projects/nowhere/video/jobs", headers=operator), 404, "unknown_project")


# -- submitting ---------------------------------------------------------------------------------


@pytest.fixture
def cam(client, staff) -> str:
    assert client.post(DEPLOYMENTS, json=CAM, headers=staff).status_code == 201
    return "cam-01"


def test_a_multipart_upload_becomes_a_queued_job(client, staff, cam, clip, engine, held):
    response = client.post(JOBS, headers=staff, data={"deployment": cam, "settings": json.dumps({"sample_fps": 4})},
                           files={"file": ("IMG 0042.MP4", clip.read_bytes(), "video/mp4")})
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["state"] == "queued" and job["source_kind"] == "upload" and job["filename"] == "IMG 0042.MP4"
    assert job["source"] is None, "the server's file path is not shown"
    assert job["settings"]["sample_fps"] == 4 and job["settings"]["sensitivity"] == 0.5, "the project's fill in"
    assert job["deployment"] == "cam-01" and job["progress"]["frames_done"] == 0
    assert held.tasks == [("video_stream.process", {"job_id": job["id"]})]
    count, files = stored(engine)
    assert count == 1 and len(files) == 1 and files[0].endswith("IMG_0042.MP4")
    assert (Path(engine.settings.data_dir) / "video_stream" / "uploads" / files[0]).read_bytes() == clip.read_bytes()
    again = client.get(f"{API}/video/jobs/{job['id']}", headers=staff).json()
    assert again["uuid"] == job["uuid"] and again["outputs"] == {}


def test_a_path_a_url_and_a_stream(client, staff, cam, clip, held):
    by_path = client.post(JOBS, json={"deployment": cam, "path": str(clip)}, headers=staff)
    assert by_path.status_code == 201, by_path.text
    assert by_path.json()["source_kind"] == "path" and by_path.json()["source"] == str(clip.resolve())
    by_url = client.post(JOBS, json={"deployment": cam, "url": "https://ana:s3cret@videos.example.org/clip.mp4"},
                         headers=staff)
    assert by_url.status_code == 201 and by_url.json()["source_kind"] == "url"
    assert "s3cret" not in by_url.text and "ana" not in by_url.json()["source"]
    live = client.post(JOBS, json={"deployment": cam, "url": "rtsp://192.0.2.7:554/live",
                                   "start_time": "2026-05-02T06:00:00"}, headers=staff)
    assert live.status_code == 201 and live.json()["source_kind"] == "stream"
    assert live.json()["settings"]["start_time"] == "2026-05-02T04:00:00+00:00", "the project's time zone"
    mjpeg = client.post(JOBS, json={"deployment": cam, "url": "http://192.0.2.8/video.mjpg", "stream": True},
                        headers=staff)
    assert mjpeg.json()["source_kind"] == "stream"
    listed = client.get(JOBS, headers=staff, params={"per_page": 3}).json()
    assert [j["id"] for j in listed["items"]] == [mjpeg.json()["id"], live.json()["id"], by_url.json()["id"]]
    older = client.get(JOBS, headers=staff, params={"cursor": listed["next_cursor"]}).json()
    assert [j["id"] for j in older["items"]] == [by_path.json()["id"]] and older["next_cursor"] is None
    assert client.get(JOBS, headers=staff, params={"state": "done"}).json()["items"] == []
    assert len(client.get(JOBS, headers=staff, params={"deployment": cam}).json()["items"]) == 4


def jpeg() -> bytes:
    ok, data = cv2.imencode(".jpg", skimage.data.chelsea())
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(("name", "make", "code"), [
    ("photo.mp4", lambda clip: jpeg(), "not_a_video"),
    ("notes.mp4", lambda clip: b"a camera-trap video, honest\n" * 100, "not_a_video"),
    ("cut.mp4", "truncated", None),
])
def test_an_upload_that_is_not_a_readable_video_is_refused(client, staff, cam, clip, engine, tmp_path, name, make, code):
    if make == "truncated":
        cut = tmp_path / "cut.mp4"
        cut.write_bytes(clip.read_bytes())
        truncate(cut, 0.3)
        content = cut.read_bytes()
    else:
        content = make(clip)
    response = client.post(JOBS, headers=staff, data={"deployment": cam}, files={"file": (name, content, "video/mp4")})
    assert response.status_code == 422, response.text
    if code:
        assert response.json()["error"]["code"] == code
    else:
        assert response.json()["error"]["code"] in ("truncated", "not_a_video", "no_frames", "unreadable_codec")
    assert response.json()["error"]["message"]
    assert stored(engine) == (0, [])


def test_bad_input_is_refused_and_nothing_is_stored(client, staff, cam, clip, engine, tmp_path):
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(clip.read_bytes())
    sneaky = str(clip.parent / ".." / "elsewhere.mp4")
    cases = [
        ({"deployment": cam, "path": str(outside)}, 422, "path_not_allowed"),
        ({"deployment": cam, "path": sneaky}, 422, "path_not_allowed"),
        ({"deployment": cam, "path": str(clip.parent / "missing.mp4")}, 422, "not_found"),
        ({"deployment": cam, "url": "ftp://videos.example.org/clip.mp4"}, 422, "invalid_url"),
        ({"deployment": cam, "url": "not a url"}, 422, "invalid_url"),
        ({"deployment": cam, "url": "http:///clip.mp4"}, 422, "invalid_url"),
        ({"deployment": cam, "url": "http://example.org:99999/a"}, 422, "invalid_url"),
        ({"deployment": cam, "path": str(clip), "settings": {"sample_fps": -1}}, 422, "schema_exclusiveMinimum"),
        ({"deployment": cam, "path": str(clip), "settings": {"sensitivity": 2}}, 422, "schema_maximum"),
        ({"deployment": cam, "path": str(clip), "settings": {"roi": [0.5, 0.5, 0.7, 0.2]}}, 422, "roi_outside_frame"),
        ({"deployment": cam, "path": str(clip), "settings": {"colour": "red"}}, 422, "schema_additionalProperties"),
        ({"deployment": cam, "path": str(clip), "settings": [1]}, 422, "invalid_request"),
        ({"deployment": "cam-99", "path": str(clip)}, 404, "unknown_deployment"),
        ({"deployment": cam, "path": str(clip), "url": "http://example.org/a.mp4"}, 422, "invalid_request"),
        ({"deployment": cam}, 422, "no_source"),
        ({"deployment": cam, "upload_id": "nope"}, 422, "tus_off"),
        ({"deployment": cam, "path": str(clip), "start_time": "yesterday"}, 422, "invalid_request"),
    ]
    for body, status, code in cases:
        error = refused(client.post(JOBS, json=body, headers=staff), status, code)
        assert "s3cret" not in error["message"]
    refused(client.post(JOBS, content=b"{not json", headers={**staff, "Content-Type": "application/json"}),
            422, "invalid_request")
    refused(client.post(JOBS, content=b"deployment=cam-01", headers={**staff, "Content-Type": "text/plain"}),
            415, "unsupported_media_type")
    refused(client.post(JOBS, headers=staff, data={"deployment": cam, "settings": "{bad"},
                        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}), 422, "invalid_settings")
    refused(client.post(JOBS, headers=staff, data={"deployment": "cam-99"},
                        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}), 404, "unknown_deployment")
    refused(client.post(JOBS, headers=staff, data={"deployment": cam, "path": "/etc/passwd"},
                        files={"file": ("clip.mp4", clip.read_bytes(), "video/mp4")}), 422, "invalid_upload")
    refused(client.post(JOBS, headers=staff, files={"deployment": (None, cam)}), 422, "no_source")
    refused(client.post(JOBS, headers=staff, data={"deployment": cam},
                        files=[("file", ("a.mp4", clip.read_bytes(), "video/mp4")),
                               ("file", ("b.mp4", clip.read_bytes(), "video/mp4"))]), 422, "invalid_upload")
    assert stored(engine) == (0, [])


def test_a_body_cut_off_or_malformed_leaves_nothing(client, staff, cam, clip, engine):
    boundary = "XyZ"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"deployment\"\r\n\r\n{cam}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()
    unfinished = head + clip.read_bytes()[:5000]  # no closing boundary
    response = client.post(JOBS, content=unfinished,
                           headers={**staff, "Content-Type": f"multipart/form-data; boundary={boundary}"})
    refused(response, 400, "invalid_multipart")
    refused(client.post(JOBS, content=b"garbage", headers={**staff, "Content-Type": "multipart/form-data"}),
            400, "invalid_multipart")
    assert stored(engine) == (0, [])


def test_an_upload_over_the_limit_is_refused_as_it_streams(make_engine, held, videos, client, clip, make_token):
    engine = make_engine(video_registry(videos, config={"max_upload_bytes": 20_000}), dispatcher=held)
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from core.tokens import create_token

    headers = bearer(create_token(engine, "admin", "cams", "t").token)
    with TestClient(create_app(engine), raise_server_exceptions=False) as small:
        assert small.post(DEPLOYMENTS, json=CAM, headers=headers).status_code == 201
        assert len(clip.read_bytes()) > 20_000

        def chunks():  # no Content-Length: the limit is met while the body streams
            body = (b"--B\r\nContent-Disposition: form-data; name=\"deployment\"\r\n\r\ncam-01\r\n"
                    b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"clip.mp4\"\r\n\r\n"
                    + clip.read_bytes() + b"\r\n--B--\r\n")
            for i in range(0, len(body), 4096):
                yield body[i:i + 4096]

        response = small.post(JOBS, content=chunks(), headers={**headers,
                                                               "Content-Type": "multipart/form-data; boundary=B"})
        refused(response, 413, "video_too_large")
    assert stored(engine) == (0, [])


@pytest.mark.parametrize(("role", "status"), [(None, 401), ("contributor", 403), ("expert", 403),
                                              ("moderator", 201), ("operator", 201)])
def test_who_may_submit(client, make_token, cam, clip, engine, role, status):
    headers = bearer(make_token(role, None if role == "operator" else "cams")) if role else {}
    response = client.post(JOBS, json={"deployment": cam, "path": str(clip)}, headers=headers)
    assert response.status_code == status, response.text
    assert stored(engine)[0] == (1 if status == 201 else 0)
    assert client.get(JOBS, headers=headers).status_code == (200 if status == 201 else status)


def test_a_job_is_seen_only_by_its_projects_staff(client, make_token, staff, cam, clip, make_engine):
    job = client.post(JOBS, json={"deployment": cam, "path": str(clip)}, headers=staff).json()
    url = f"{API}/video/jobs/{job['id']}"
    missing = f"{API}/video/jobs/999999"
    other_staff = bearer(make_token("admin", "quiet"))
    contributor = bearer(make_token("contributor", "cams"))
    for headers in (other_staff, contributor):
        for path in (url, missing):
            refused(client.get(path, headers=headers), 404, "unknown_job")
        refused(client.post(f"{url}/cancel", headers=headers), 404, "unknown_job")
        refused(client.get(f"{url}/outputs/camtrap-dp.zip", headers=headers), 404, "unknown_job")
        refused(client.get(f"{url}/events", headers=headers), 404, "unknown_job")
    refused(client.get(url), 401, "unauthorized")
    refused(client.get(f"{url}/events"), 401, "unauthorized")
    assert client.get(url, headers=staff).status_code == 200


def test_a_tus_upload_of_the_mobile_bridge(make_engine, held, videos, clip, tmp_path):
    """A large video goes up with any tus client; the job names the upload."""
    import base64
    import hashlib

    import yaml
    from fastapi.testclient import TestClient

    from core.api.app import create_app
    from core.tokens import create_token
    from tests.plugins.video_stream.conftest import service_entry

    text = yaml.safe_load(video_registry(videos))
    text["services"]["mobile_bridge"] = service_entry("mobile_bridge")
    text["projects"][0]["services"]["mobile_bridge"] = {}
    engine = make_engine(yaml.safe_dump(text), dispatcher=held)
    token = create_token(engine, "admin", "cams", "t").token
    other = create_token(engine, "operator", None, "o").token
    data = clip.read_bytes()
    tus = {"Tus-Resumable": "1.0.0"}
    meta = f"filename {base64.b64encode(b'trap.mp4').decode()},sha256 " \
           f"{base64.b64encode(hashlib.sha256(data).hexdigest().encode()).decode()}"
    with TestClient(create_app(engine), raise_server_exceptions=False) as client:
        assert client.post(DEPLOYMENTS, json=CAM, headers=bearer(token)).status_code == 201
        made = client.post(f"{API}/mobile/uploads", headers={**bearer(token), **tus, "Upload-Length": str(len(data)),
                                                             "Upload-Metadata": meta})
        assert made.status_code == 201, made.text
        upload_id = made.headers["Location"].rsplit("/", 1)[1]
        half = len(data) // 2
        unfinished = client.post(JOBS, json={"deployment": "cam-01", "upload_id": upload_id}, headers=bearer(token))
        refused(unfinished, 422, "upload_unfinished")
        for start, end in ((0, half), (half, len(data))):
            sent = client.patch(f"{API}/mobile/uploads/{upload_id}", content=data[start:end], headers={
                **bearer(token), **tus, "Upload-Offset": str(start), "Content-Type": "application/offset+octet-stream"})
            assert sent.status_code == 204, sent.text
        refused(client.post(JOBS, json={"deployment": "cam-01", "upload_id": upload_id}, headers=bearer(other)),
                404, "upload_not_found")  # another account's upload is not yours
        job = client.post(JOBS, json={"deployment": "cam-01", "upload_id": upload_id}, headers=bearer(token))
        assert job.status_code == 201, job.text
        assert job.json()["source_kind"] == "upload" and job.json()["filename"] == "trap.mp4"
