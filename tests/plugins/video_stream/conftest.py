"""What video_stream's tests share: a registry offering video_stream (the repository's own service
entry, its folders pointed at the test's ``videos`` folder) and species_id (its default model,
built once per session and linked into each engine), projects ``cams`` (public, auto-publishing,
video on) and ``quiet`` (video off), a deployment, and waiting for a job to end.

Test videos are written with ``tests/plugins/video_stream/synth.py`` (real photos moving over a
real background); keep them small and short: the tests run on two cores.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]


def service_entry(name: str) -> dict[str, Any]:
    """A service's entry in the repository's registry.yaml."""
    return yaml.safe_load((ROOT / "registry.yaml").read_text())["services"][name]


def video_registry(videos: Path, config: dict[str, Any] | None = None,
                   cams: dict[str, Any] | None = None) -> str:
    """The registry text: ``config`` goes over the video service's operator config, ``cams`` over
    the cams project's video settings."""
    video = service_entry("video_stream")
    video["config"] = {**video.get("config", {}), "allowed_folders": [str(videos)], **(config or {})}
    species = service_entry("species_id")
    species["config"] = {"models": [{"name": "efficientnet_lite0-imagenet1k", "builtin": "efficientnet_lite0"}]}
    return yaml.safe_dump({
        "services": {"video_stream": video, "species_id": species},
        "projects": [
            {"slug": "cams", "name": "Camera traps", "public": True, "auto_publish": True,
             "timezone": "Europe/Madrid", "licence": "CC-BY-4.0",
             "description": "Animals passing camera traps, found in their videos by the video_stream service.",
             "dataset": {"title": "Camera-trap events", "publisher": {"name": "Test observatory",
                                                                       "email": "data@example.org"},
                         "contacts": [{"name": "Data manager", "email": "data@example.org"}],
                         "creators": [{"name": "Camera traps"}]},
             "services": {"video_stream": {"sample_fps": 5, **(cams or {})}, "species_id": {}}},
            {"slug": "quiet", "name": "Quiet", "public": True, "services": {}},
        ],
    }, sort_keys=False)


@pytest.fixture
def videos(tmp_path: Path) -> Path:
    """The folder the test registry allows jobs to read paths from."""
    folder = tmp_path / "videos"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture
def registry(videos: Path) -> str:
    return video_registry(videos)


@pytest.fixture
def plugins() -> str:
    return ""  # the repository's installed plugins only


@pytest.fixture(scope="session")
def built_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """species_id's default model, built once for the session."""
    from plugins.species_id import model_build

    return model_build.build_default_model(tmp_path_factory.mktemp("video_models"))


def link_model(data_dir: Path, built: Path) -> None:
    models = Path(data_dir) / "models"
    models.mkdir(parents=True, exist_ok=True)
    if not (models / built.name).exists():
        (models / built.name).symlink_to(built)


@pytest.fixture
def make_engine(make_engine: Callable[..., Any], built_model: Path) -> Callable[..., Any]:
    """The kit's ``make_engine``, with species_id's model in each engine's data folder."""

    def make(*args: Any, **kwargs: Any) -> Any:
        engine = make_engine(*args, **kwargs)
        link_model(engine.settings.data_dir, built_model)
        return engine

    return make


@pytest.fixture
def deployment(engine: Any) -> dict[str, Any]:
    """A deployment of ``cams``: a camera on a forest track near Barcelona."""
    from plugins.video_stream.jobs import create_deployment

    return create_deployment(engine, "cams", None, {
        "deployment_id": "CAM-01", "location_name": "Collserola, forest track", "lat": 41.4168, "lon": 2.1024,
        "start": "2026-04-01T08:00:00+02:00", "end": "2026-06-01T08:00:00+02:00",
        "camera_model": "Browning-BTC-8E", "camera_height_m": 0.8, "bait": False, "habitat": "Mediterranean forest",
    })


def wait_for_job(engine: Any, job_id: int, timeout: float = 120.0, states: tuple[str, ...] = ("done", "failed",
                 "cancelled"), details: Callable[[], str] | None = None) -> dict[str, Any]:
    """Poll the job until its state is one of ``states``; fail the test after ``timeout`` s."""
    from plugins.video_stream.jobs import get_job

    deadline = time.monotonic() + timeout
    while True:
        job = get_job(engine, job_id)
        assert job is not None
        if job["state"] in states:
            return job
        if time.monotonic() > deadline:
            more = f"\n{details()}" if details else ""
            pytest.fail(f"job {job_id} is still {job['state']} after {timeout} s "
                        f"(frames {job['frames_done']}/{job['frames_total']}, error {job['error']}){more}")
        time.sleep(0.1)
