"""GET /metrics: valid Prometheus text (parsed with prometheus_client's parser) carrying planted
figures, requests counted by route template (no id in a label), and who may read it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from core.api.app import create_app
from core.db.models import utcnow
from core.metrics import install_metrics
from tests.conftest import draft
from tests.test_service_health import plant, plant_observations


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and sorted labels (the parser fails on invalid text)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def local_client(engine):
    """The app as uvicorn serves it to a caller on this machine (client address 127.0.0.1)."""
    app = create_app(engine)
    install_metrics(app)  # a no-op once create_app installs it
    with TestClient(app, raise_server_exceptions=False, client=("127.0.0.1", 50000)) as client:
        yield client


def test_metrics_parse_and_carry_planted_figures(engine, local_client, make_token):
    ids = plant_observations(engine, "alpha", 8)
    now = utcnow()
    plant(engine, ids, "recorder", [
        {"status": "done", "finished_at": now, "duration_ms": 5},
        {"status": "done", "finished_at": now, "duration_ms": 5, "attempts": 2},
        {"status": "failed", "finished_at": now, "error": "timed out after 2 s", "attempts": 3},
        {"status": "failed", "finished_at": now, "error": "RuntimeError: boom", "attempts": 3},
        {"status": "pending", "attempts": 0, "updated_at": now - timedelta(seconds=120)},
        {"status": "pending", "attempts": 1, "updated_at": now - timedelta(seconds=30),
         "not_before": now + timedelta(hours=1)},  # a retry not yet due: no lag
        {"status": "running"},
    ])
    operator = make_token("operator")
    for _ in range(3):
        assert local_client.get(f"/api/v1/observations/{ids[0]}", headers={"Authorization": f"Bearer {operator}"}
                                ).status_code == 200
    assert local_client.get("/api/v1/no/such/path").status_code == 404

    response = local_client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)
    enrichments = {outcome: found[("observatory_enrichments", (("outcome", outcome), ("service", "recorder")))]
                   for outcome in ("pending", "running", "done", "failed", "timed_out")}
    assert enrichments == {"pending": 2, "running": 1, "done": 2, "failed": 1, "timed_out": 1}
    assert found[("observatory_enrichments_retried", (("service", "recorder"),))] == 3
    lag = found[("observatory_enrichment_queue_lag_seconds", (("service", "recorder"),))]
    assert 119 <= lag < 200, "the oldest due pending enrichment, not the retry waiting for its time"
    assert found[("observatory_database_up", ())] == 1
    assert found[("observatory_db_pool_checked_out", ())] >= 0

    read = (("method", "GET"), ("route", "/api/v1/observations/{obs_id}"), ("status", "200"))
    assert found[("observatory_http_requests_total", read)] == 3
    assert found[("observatory_http_request_duration_seconds_count",
                  (("method", "GET"), ("route", "/api/v1/observations/{obs_id}")))] == 3
    assert found[("observatory_http_requests_total", (("method", "GET"), ("route", "<unmatched>"),
                                                      ("status", "404")))] == 1
    assert str(ids[0]) not in "".join(dict(labels).get("route", "") for _, labels in found)


def test_the_real_path_shows_in_the_metrics(engine, local_client):
    """flaky fails once then succeeds (BASE_REGISTRY): two observations, two retried, none failed."""
    from core.testing import submit

    for _ in range(2):
        submit(engine, "alpha", draft())
    found = samples(local_client.get("/metrics").text)
    assert found[("observatory_enrichments", (("outcome", "done"), ("service", "flaky")))] == 2
    assert found[("observatory_enrichments", (("outcome", "failed"), ("service", "flaky")))] == 0
    assert found[("observatory_enrichments_retried", (("service", "flaky"),))] == 2


def test_who_may_read_the_metrics(engine, client, settings_factory, make_engine):
    refused = client.get("/metrics")  # the test client's address is not this machine's
    assert refused.status_code == 403 and "metrics_token" in refused.json()["error"]["message"]
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]

    guarded = make_engine(metrics_token="s3cret-scrape")
    with TestClient(create_app(guarded), raise_server_exceptions=False, client=("127.0.0.1", 1)) as local:
        assert local.get("/metrics").status_code == 401, "with a token set, even a local caller presents it"
        assert local.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = local.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status_code == 200 and "observatory_database_up 1.0" in ok.text
