"""The public test kit (``core.testing``): a pytest plugin any package gets, that ``-p no:observatory``
turns off, whose helpers submit and wait through an engine or the API, and whose ``live_worker`` is
a real worker process. (The rest of the suite runs on its fixtures too: tests/conftest.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.testing import draft, submit, wait_for_enrichments

A_PACKAGES_TEST = '''
from core.testing import draft, submit, wait_for_enrichments


def test_a_submit_through_the_api(client, photos):
    sent = submit(client, "demo", draft(), media={"coffee.jpg": photos["coffee.jpg"]})
    observation = wait_for_enrichments(client, sent["id"])
    assert observation["media"][0]["content_type"] == "image/jpeg"
    assert observation["grade"] == "needs_id"
'''


def run_pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_") or k.startswith("OBSERVATORY_TEST_")}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_a_package_gets_the_fixtures_without_a_conftest_and_p_no_observatory_turns_them_off(tmp_path):
    (tmp_path / "test_mine.py").write_text(A_PACKAGES_TEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # a package of its own, outside the engine's folder
    ran = run_pytest(tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:]
    assert "1 passed" in ran.stdout
    off = run_pytest(tmp_path, "-p", "no:observatory")
    assert off.returncode == 1
    assert "fixture 'client' not found" in off.stdout


def test_importing_the_kit_imports_no_engine_module():
    code = ("import sys, core.testing; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'fastapi', 'celery', 'cv2', 'skimage') or m.startswith('core.') and m != 'core.testing' "
            "and m != 'core.hookspecs'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_submit_and_wait_through_the_engine_and_through_the_api(engine, client, photos):
    stored = submit(engine, "alpha", draft(), media={"chelsea.jpg": photos["chelsea.jpg"]})
    assert stored["enrichments"]["recorder"]["result"] == {"seen": stored["id"], "media": 1}
    assert stored["enrichments"]["flaky"]["attempts"] == 2, "the inline worker retried the failing plugin"

    sent = submit(client, "alpha", draft(client_id="kit-1"), media=[("camera.png", photos["camera.png"])])
    assert sent["media"][0]["content_type"] == "image/png"
    observation = wait_for_enrichments(client, sent["id"])
    assert observation["enrichments"]["recorder"]["result"] == {"seen": sent["id"], "media": 1}
    assert [f["code"] for f in observation["flags"]] == ["recorded"]


def test_every_engine_starts_on_empty_tables_a_plugins_own_included(make_engine):
    first = make_engine()
    notes = sa.Table("kit_test_notes", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    notes.create(first.db)  # as a plugin with tables of its own makes them at start-up
    try:
        with first.db.begin() as conn:
            conn.execute(notes.insert().values(id=1))
        submit(first, "alpha", draft())
        second = make_engine()
        with second.db.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar() == 0
            assert conn.execute(sa.text("SELECT count(*) FROM observations")).scalar() == 0
    finally:
        notes.drop(first.db)


def test_a_refused_submit_says_what_the_api_answered(client):
    with pytest.raises(AssertionError, match=r"answered 422: .*reject_me"):
        submit(client, "alpha", draft(fields={"reject_me": True}))


class Nothing:
    """A dispatcher that runs and queues nothing, as if no worker were running."""

    def enqueue(self, engine, enrichments):
        pass

    def assess(self, engine, observation_id, *, due_only=False):
        pass

    def flush(self, timeout=10.0):
        return True


def test_waiting_for_enrichments_that_no_worker_runs_fails_naming_them(make_engine):
    engine = make_engine(dispatcher=Nothing())
    obs_id = submit(engine, "alpha", draft())["id"]
    with pytest.raises(pytest.fail.Exception, match=r"still waits after 0.3 s: enrichments \{'flaky': 'pending', "
                                                    r"'recorder': 'pending'\}.*live_worker"):
        wait_for_enrichments(engine, obs_id, timeout=0.3)


def test_a_live_worker_runs_the_enrichments_in_another_process(client, live_worker):
    sent = submit(client, "alpha", draft())
    observation = wait_for_enrichments(client, sent["id"], timeout=120)
    assert observation["enrichments"]["recorder"]["result"] == {"seen": sent["id"], "media": 0}, live_worker.logs()
    assert observation["enrichments"]["flaky"]["status"] == "done"
    assert "observatory.enrich" in live_worker.logs(), "the tasks ran in the worker process"
