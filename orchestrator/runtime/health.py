"""The worker's `/health` and `/metrics` over HTTP, for supervisors, probes and Prometheus.

`GET /health` answers `{"state": ..., "since": ..., ...}` with 200 when the worker is
healthy and 503 otherwise (starting, waiting for Kafka or Redis, stopping). `GET /metrics`
answers the Prometheus text format. Served on `ORCHESTRATOR_METRICS_HOST`:`_PORT` (also
read as `ORCHESTRATOR_HEALTH_HOST`:`_PORT`, their earlier names).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.errors import ConfigurationError
from orchestrator.infra.outage import Health

__all__ = ["STATES", "Figures", "HealthServer", "WorkerMetrics"]

log = logging.getLogger(__name__)

STATES = ("starting", "healthy", "waiting_for_kafka", "waiting_for_redis", "stopping")

# A batch of up to `ORCHESTRATOR_BATCH_MAX` events takes milliseconds to seconds.
_BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A timer fires within a poll interval (200 ms) when all is well; minutes late after an outage.
_LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


@dataclass(frozen=True, slots=True)
class Figures:
    """The worker's running totals, read at each scrape."""

    events: int
    duplicates: int
    late: int
    deadletters: int
    timers_fired: int
    batch_retries: int
    # Records not yet processed, by owned `events` partition (see `Feed.lag`).
    lag: Mapping[int, int] = field(default_factory=dict)


class WorkerMetrics:
    """The worker's histograms, observed where things happen, in the registry `/metrics` reads.

    Each worker has its own registry (not prometheus-client's global one), so several workers
    in one process (the tests) do not share series.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.batch_seconds = Histogram(
            "orchestrator_worker_batch_seconds",
            "seconds one batch took to apply (each attempt of `process`)",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.timer_lateness = Histogram(
            "orchestrator_worker_timer_lateness_seconds",
            "seconds between a timer's due time and its firing, in the engine clock's seconds",
            buckets=_LATENESS_BUCKETS,
            registry=self.registry,
        )


class _WorkerCollector(Collector):
    """Reads the worker's totals at scrape time, so the hot path keeps plain counters."""

    def __init__(self, health: Health, figures: Callable[[], Figures]) -> None:
        self.health = health
        self.figures = figures

    def collect(self) -> Iterator[Metric]:
        figures = self.figures()
        for name, value, text in (
            ("events_applied", figures.events, "events the worker applied (duplicates included)"),
            ("duplicate_events", figures.duplicates, "redelivered events skipped as duplicates"),
            ("late_events", figures.late, "events applied after a later timer had fired"),
            ("dead_letters", figures.deadletters, "records sent to the dead letters"),
            ("timers_fired", figures.timers_fired, "timers fired as timer.fired events"),
            ("batch_retries", figures.batch_retries, "retries after a Kafka or Redis error"),
        ):
            yield CounterMetricFamily(f"orchestrator_worker_{name}", text, value=value)
        state = GaugeMetricFamily(
            "orchestrator_worker_state", "1 for the state the worker is in", labels=["state"]
        )
        for name in STATES:
            state.add_metric([name], 1.0 if self.health.state == name else 0.0)
        yield state
        lag = GaugeMetricFamily(
            "orchestrator_worker_consumer_lag",
            "records of an owned events partition not yet processed (end offset - position)",
            labels=["partition"],
        )
        for partition, records in sorted(figures.lag.items()):
            lag.add_metric([str(partition)], float(records))
        yield lag


class HealthServer:
    """A small aiohttp server answering `/health` and `/metrics` for one worker.

    `/metrics` holds `metrics`' histograms and the `figures` read at each scrape.
    """

    def __init__(
        self,
        health: Health,
        figures: Callable[[], Figures],
        metrics: WorkerMetrics,
        host: str,
        port: int,
    ) -> None:
        self.health = health
        self.host = host
        self.port = port
        self.registry = metrics.registry
        self.registry.register(_WorkerCollector(health, figures))
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        self._set_up = False

    async def start(self) -> None:
        """Listen; raises `ConfigurationError` if the port cannot be bound."""
        await self._runner.setup()
        self._set_up = True
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve /health on {self.host}:{self.port}: {exc.strerror}; set "
                "ORCHESTRATOR_METRICS_PORT to a free port (one per worker on a host) or 0 for none"
            ) from exc
        log.info("serving /health and /metrics on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening; safe to call twice."""
        if self._set_up:
            self._set_up = False
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        snapshot = self.health.snapshot()
        return web.json_response(snapshot, status=200 if snapshot["state"] == "healthy" else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
