"""The worker's `/health` and `/metrics`: what it reports (served by `infra/healthserver.py`).

`GET /health` answers `{"state": ..., "since": ..., ...}` with 200 when the worker is
healthy and 503 otherwise (starting, waiting for Kafka or Redis, stopping). `GET /metrics`
answers the Prometheus text format. Served on `ORCHESTRATOR_METRICS_HOST`:`_PORT` (also
read as `ORCHESTRATOR_HEALTH_HOST`:`_PORT`, their earlier names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.infra.healthserver import HealthServer
from orchestrator.infra.outage import Health

__all__ = ["STATES", "Figures", "WorkerMetrics", "worker_health_server"]

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


def worker_health_server(
    health: Health,
    figures: Callable[[], Figures],
    metrics: WorkerMetrics,
    host: str,
    port: int,
) -> HealthServer:
    """The worker's `/health` and `/metrics`: `metrics`' histograms and the `figures` read
    at each scrape."""
    metrics.registry.register(_WorkerCollector(health, figures))
    return HealthServer(health, metrics.registry, host, port)
