"""Service health from the engine's records: planted enrichment rows give exactly the planted
figures, and the real enrichment path (flaky's failures and retries) is measured as it ran."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core.db.models import Enrichment, Observation, utcnow
from core.service_health import describe_error, service_health
from tests.conftest import draft
from core.testing import submit


def plant_observations(engine, project: str, count: int) -> list[int]:
    """``count`` bare observations of ``project`` (no enrichment), inserted in one statement."""
    now = utcnow()
    rows = [{"project": project, "content_hash": f"h{i}", "observed_at": now, "lat": 41.0, "lon": 2.0,
             "fields": {}, "status": "pending", "created_at": now, "updated_at": now} for i in range(count)]
    with engine.db.begin() as conn:
        conn.execute(sa.insert(Observation), rows)
        return list(conn.scalars(sa.select(Observation.id).where(Observation.project == project)
                                 .order_by(Observation.id.desc()).limit(count)))


def plant(engine, observation_ids: list[int], plugin: str, rows: list[dict]) -> None:
    """One enrichment of ``plugin`` per observation, with the given values."""
    with engine.db.begin() as conn:
        conn.execute(sa.insert(Enrichment), [{"observation_id": o, "plugin": plugin, "attempts": 1, "finished_at": None,
                                              "duration_ms": None, "error": None,
                                              "updated_at": r.get("finished_at") or utcnow(), **r}
                                             for o, r in zip(observation_ids, rows)])


def test_planted_rows_give_exactly_the_planted_figures(engine):
    now = utcnow()
    hours = lambda h: now - timedelta(hours=h)  # noqa: E731
    alpha = plant_observations(engine, "alpha", 12)
    beta = plant_observations(engine, "beta", 3)
    done = lambda h, ms, attempts=1: {"status": "done", "finished_at": hours(h), "duration_ms": ms,  # noqa: E731
                                      "attempts": attempts}
    plant(engine, alpha, "recorder", [
        done(1, 100), done(2, 200), done(3, 300, attempts=2),          # today: 3 done, one after a retry
        {"status": "failed", "finished_at": hours(5), "duration_ms": 2000, "attempts": 3,
         "error": "timed out after 2 s"},                                # today: a time-out
        {"status": "failed", "finished_at": hours(4), "duration_ms": 50, "attempts": 3,
         "error": "ValueError: bad photo of ana@example.org in /srv/data/media/ab/cd.jpg id 1234567 "
                  "(at /srv/code/plugins/x.py:12)\nTraceback..."},      # today: a failure, the latest error
        done(30, 400), done(40, 500),                                    # this week
        {"status": "failed", "finished_at": hours(50), "duration_ms": 10, "attempts": 3,
         "error": "x stopped. the worker stopped during attempt 3 (killed or past its time limit)"},
        done(24 * 10, 600), done(24 * 20, 700),                          # this month
        done(24 * 40, 800),                                              # older: not counted
        {"status": "pending", "attempts": 0},                            # waiting
    ])
    plant(engine, beta, "recorder", [done(1, 1000), done(2, 3000), {"status": "running", "attempts": 1}])

    health = service_health(engine, ["recorder", "flaky"])
    total = health["recorder"].total
    day, week, month = (vars(total.windows[w]) for w in ("day", "week", "month"))
    assert day == {"run": 7, "succeeded": 5, "failed": 2, "timed_out": 1, "retried": 3,
                   "median_ms": 300, "p95_ms": 3000}
    assert week == {"run": 10, "succeeded": 7, "failed": 3, "timed_out": 2, "retried": 4,
                    "median_ms": 300, "p95_ms": 3000}
    assert month == {"run": 12, "succeeded": 9, "failed": 3, "timed_out": 2, "retried": 4,
                     "median_ms": 400, "p95_ms": 3000}
    assert (total.pending, total.running) == (1, 1)

    alpha_day = vars(health["recorder"].projects["alpha"].windows["day"])
    assert alpha_day == {"run": 5, "succeeded": 3, "failed": 2, "timed_out": 1, "retried": 3,
                         "median_ms": 200, "p95_ms": 2000}
    beta_day = vars(health["recorder"].projects["beta"].windows["day"])
    assert beta_day == {"run": 2, "succeeded": 2, "failed": 0, "timed_out": 0, "retried": 0,
                        "median_ms": 1000, "p95_ms": 3000}
    assert health["recorder"].projects["beta"].last_error is None

    error = total.last_error
    assert error["code"] == "ValueError"
    assert error["message"] == "bad photo of <e-mail> in <path> id <number>"
    assert "ana" not in str(error) and "srv" not in str(error) and "Traceback" not in str(error)
    assert vars(health["flaky"].total.windows["month"])["run"] == 0, "a service with no row is there, empty"


def test_the_real_enrichment_path_records_retries_and_durations(engine):
    """flaky fails its first attempt on every observation (BASE_REGISTRY: failures 1), then succeeds."""
    for _ in range(3):
        submit(engine, "alpha", draft())
    health = service_health(engine, ["flaky", "recorder"])
    flaky = vars(health["flaky"].projects["alpha"].windows["day"])
    assert (flaky["run"], flaky["succeeded"], flaky["failed"], flaky["retried"]) == (3, 3, 0, 3)
    assert flaky["median_ms"] is not None and 0 <= flaky["median_ms"] <= flaky["p95_ms"] < 5000
    recorder = vars(health["recorder"].total.windows["day"])
    assert (recorder["run"], recorder["retried"]) == (3, 0)
    with engine.db.connect() as conn:
        started = conn.scalars(sa.select(Enrichment.started_at).where(Enrichment.plugin == "flaky")).all()
    assert len(started) == 3 and all(s is not None for s in started)


def test_the_last_error_keeps_no_personal_data():
    assert describe_error("timed out after 2 s") == {"code": "timed_out", "message": "timed out after 2 s"}
    assert describe_error("RuntimeError: flaky failure 1 (at /home/x/tests/support/flaky.py:13)") == {
        "code": "RuntimeError", "message": "flaky failure 1"}
    found = describe_error("OperationalError: connect to postgresql://bob:secret@db.example.org/obs failed; "
                           "call +34 600123456, see C:\\Users\\bob\\notes.txt", "/var/lib/obs")
    assert "secret" not in found["message"] and "bob" not in found["message"] and "600123456" not in found["message"]
    assert describe_error(None) == {"code": None, "message": ""}


@pytest.mark.slow
def test_health_is_fast_at_100000_enrichments(engine):
    ids = plant_observations(engine, "alpha", 100_000)
    now = utcnow()
    rows = [{"status": ("done", "failed", "done", "pending")[i % 4], "attempts": 1 + i % 3,
             "finished_at": None if i % 4 == 3 else now - timedelta(minutes=i % 40_000),
             "duration_ms": i % 997, "error": "RuntimeError: boom" if i % 4 == 1 else None} for i in range(100_000)]
    plant(engine, ids, "recorder", rows)
    started = time.perf_counter()
    health = service_health(engine)
    took = time.perf_counter() - started
    assert health["recorder"].total.windows["month"].run == 75_000
    assert took < 5.0, f"health of 100,000 enrichments took {took:.2f} s"
    print(f"health of 100,000 enrichments: {took:.2f} s")
