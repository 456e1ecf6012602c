"""Prometheus metrics: HTTP requests by route template, and the engine's state read from the
database at scrape time (so that every process, API or worker, is counted: the database is the truth).

- ``observatory_http_requests_total{method, route, status}`` and
  ``observatory_http_request_duration_seconds{method, route}``: counted in this API process by
  ``MetricsMiddleware``; ``route`` is the route's template (``/api/v1/observations/{observation_id}``),
  never the raw path, and ``<unmatched>`` for a path no route has (404s, mounted static files).
- ``observatory_enrichments{service, outcome}``: enrichment rows by outcome (pending, running, done,
  failed, timed_out; a time-out is not counted in failed), and
  ``observatory_enrichments_retried{service}``: rows that needed more than one attempt.
- ``observatory_enrichment_queue_lag_seconds{service}``: how long the oldest due pending enrichment has waited.
- ``observatory_db_pool_checked_out``, ``observatory_db_pool_size``, ``observatory_db_pool_overflow``:
  this process's SQLAlchemy pool.
- ``observatory_database_up``: 1 when the scrape could read the database, else 0.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import and_, case, func, or_, select

from core.db.models import Enrichment, utcnow
from core.db.session import transaction
from core.service_health import TIMED_OUT_PATTERNS

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from core.engine import Engine

log = logging.getLogger(__name__)
UNMATCHED = "<unmatched>"
OUTCOMES = ("pending", "running", "done", "failed", "timed_out")


class RequestMetrics:
    """The request counter and latency histogram of one application, in their own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter("observatory_http_requests", "HTTP requests answered, by route template",
                                ["method", "route", "status"], registry=registry)
        self.latency = Histogram("observatory_http_request_duration_seconds",
                                 "Time to answer an HTTP request, by route template", ["method", "route"],
                                 registry=registry)


class MetricsMiddleware:
    """Counts every HTTP request by method, route template and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The template of the route that answered (FastAPI puts it in the scope), else ``<unmatched>``
    (a 404, or a mounted app such as the static files): never a raw path, so no id becomes a label."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class EngineCollector(Collector):
    """The engine's state, read from the database at each scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("observatory_database_up", "1 when the scrape could read the database")
        try:
            families = list(self._from_database())
        except Exception as exc:  # a scrape must still answer when the database is down
            log.warning("metrics: cannot read the database: %s", type(exc).__name__)
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families
        yield from self._pool()

    def _from_database(self) -> Iterator[GaugeMetricFamily]:
        timed_out = or_(*(Enrichment.error.like(p) for p in TIMED_OUT_PATTERNS))
        outcome = case((and_(Enrichment.status == "failed", timed_out), "timed_out"), else_=Enrichment.status)
        now = utcnow()
        due = and_(Enrichment.status == "pending", or_(Enrichment.not_before.is_(None), Enrichment.not_before <= now))
        with transaction(self.engine.readers) as session:
            counts = session.execute(select(Enrichment.plugin, outcome, func.count())
                                     .group_by(Enrichment.plugin, outcome)).all()
            retried = session.execute(select(Enrichment.plugin, func.count()).where(Enrichment.attempts > 1)
                                      .group_by(Enrichment.plugin)).all()
            oldest = session.execute(select(Enrichment.plugin, func.min(func.coalesce(Enrichment.not_before,
                                                                                        Enrichment.updated_at)))
                                     .where(due).group_by(Enrichment.plugin)).all()
        services = sorted({row[0] for row in counts} | set(self.engine.host.info))
        enrichments = GaugeMetricFamily("observatory_enrichments", "Enrichments by service and outcome "
                                        "(timed_out: failed by the time limit, not counted in failed)",
                                        labels=["service", "outcome"])
        found = {(service, state): n for service, state, n in counts}
        for service in services:
            for state in OUTCOMES:
                enrichments.add_metric([service, state], found.get((service, state), 0))
        yield enrichments
        again = GaugeMetricFamily("observatory_enrichments_retried", "Enrichments that needed more than one attempt",
                                  labels=["service"])
        for service, n in retried:
            again.add_metric([service], n)
        yield again
        lag = GaugeMetricFamily("observatory_enrichment_queue_lag_seconds",
                                "Age of the oldest due pending enrichment (0: none waiting)", labels=["service"])
        waiting = {service: at for service, at in oldest}
        for service in services:
            at = waiting.get(service)
            lag.add_metric([service], max(0.0, (now - _aware(at)).total_seconds()) if at is not None else 0.0)
        yield lag

    def _pool(self) -> Iterator[GaugeMetricFamily]:
        pool: Any = self.engine.db.pool
        for name, what, method in (("checked_out", "connections in use", "checkedout"),
                                   ("size", "the pool's size", "size"), ("overflow", "connections past the size",
                                                                         "overflow")):
            value = getattr(pool, method, None)
            if callable(value):
                family = GaugeMetricFamily(f"observatory_db_pool_{name}", f"This process's database pool: {what}")
                family.add_metric([], float(value()))
                yield family


def _aware(value: Any) -> Any:
    from datetime import timezone

    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def install_metrics(app: Any) -> RequestMetrics:
    """Count ``app``'s requests (``MetricsMiddleware``) in a registry of its own, which ``/metrics``
    exposes with the engine's collector. Call before the app serves its first request; a second
    call returns the first's metrics."""
    found = getattr(app.state, "metrics", None)
    if found is not None:
        return found
    registry = CollectorRegistry(auto_describe=False)
    metrics = RequestMetrics(registry)
    app.state.metrics = metrics
    app.state.metrics_registry = registry
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics


def exposition(app: Any, engine: Engine) -> bytes:
    """The Prometheus text of ``app``'s request metrics (when installed) and the engine's state."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(EngineCollector(engine))
    own = getattr(app.state, "metrics_registry", None)
    text = generate_latest(registry)
    return (generate_latest(own) + text) if own is not None else text
