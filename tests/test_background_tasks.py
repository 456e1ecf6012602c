"""Plugins' background work (``register_tasks``, ``core.tasks.start_task``): run by a real
worker process through the broker, or in a thread with the inline dispatcher; the workers'
recovery loop calls ``recover_work``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.engine import Engine
from core.plugins import PluginError
from core.tasks import UnknownTask, start_task
from core.testing import LiveWorker
from core.worker import CeleryDispatcher
from tests.support.waiting import wait_until

TASKER = "tasker=tests.support.tasker"
REGISTRY = """
projects:
  - slug: demo
    name: Demo
"""


@pytest.fixture
def registry() -> str:
    return REGISTRY


def test_inline_work_runs_in_a_thread_and_flush_waits_for_it(make_engine, tmp_path):
    engine = make_engine(plugins=TASKER)
    target = tmp_path / "out.txt"
    start_task(engine, "tasker.write", path=str(target), text="hello")
    assert engine.dispatcher.flush(10.0)
    assert target.read_text() == f"hello {os.getpid()}"


def test_an_unknown_task_is_refused_by_name(make_engine):
    engine = make_engine(plugins=TASKER)
    with pytest.raises(UnknownTask, match="no background task 'tasker.nope'"):
        start_task(engine, "tasker.nope")


def test_a_task_name_registered_twice_stops_start_up(make_engine):
    with pytest.raises(PluginError, match="background task 'tasker.write' is already registered"):
        make_engine(plugins={"tasker": "tests.support.tasker", "tasker_twin": "tests.support.tasker_twin"})


def test_a_worker_runs_the_work_and_its_recovery_loop_calls_recover_work(settings_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKER_DIR", str(tmp_path))
    settings = settings_factory(REGISTRY, plugin_modules=TASKER, broker_url="filesystem://", recovery_interval_s=1)
    engine = Engine.start(settings, dispatcher=CeleryDispatcher())
    workers = LiveWorker(dict(os.environ), tmp_path)
    try:
        workers.start()
        target = tmp_path / "by-worker.txt"
        start_task(engine, "tasker.write", path=str(target), text="from the worker")
        wait_until(target.exists, 60, "the worker to run the task", details=workers.logs)
        text, pid = target.read_text().rsplit(" ", 1)
        assert text == "from the worker" and int(pid) != os.getpid()
        recovered = Path(tmp_path, "recovered")
        wait_until(lambda: recovered.exists() and len(recovered.read_text().split()) >= 2, 30,
                   "the recovery loop to call recover_work", details=workers.logs)
    finally:
        workers.stop()
        engine.close()
