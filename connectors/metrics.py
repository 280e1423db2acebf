"""A connector worker's Prometheus metrics, served with `/health` by `infra/healthserver.py`.

Counters are this process's (Prometheus sums them across workers); the circuit states and
the retry schedules' depths are shared by every worker, so they are read from Redis at each
scrape (`refresh`, one pipelined round trip).
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from connectors.schedule import RetrySchedule
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["CIRCUIT_STATES", "ConnectorMetrics"]

CIRCUIT_STATES = ("closed", "open", "half_open")


class ConnectorMetrics:
    """The counters a delivery updates, and the gauges `refresh` reads from Redis.

    Each worker has its own registry (not prometheus-client's global one), so several workers
    in one process (the tests) do not share series.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.deliveries = Counter(
            "orchestrator_connector_deliveries",
            "messages finished, by channel and outcome (delivered, failed)",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.retries = Counter(
            "orchestrator_connector_retries",
            "provider attempts that failed for now and were scheduled again, by channel",
            ["channel"],
            registry=self.registry,
        )
        self.rate_limit_waits = Counter(
            "orchestrator_connector_rate_limit_waits",
            "messages the provider's rate limit made wait (moved to the retry schedule)",
            ["provider"],
            registry=self.registry,
        )
        self.circuit_state = Gauge(
            "orchestrator_connector_circuit_state",
            "1 for the state a provider's circuit breaker is in (shared by all workers)",
            ["provider", "state"],
            registry=self.registry,
        )
        self.schedule_depth = Gauge(
            "orchestrator_connector_retry_schedule_depth",
            "messages waiting in a channel's retry schedule (shared by all workers)",
            ["channel"],
            registry=self.registry,
        )
        # Providers this worker has sent to (webhook receivers are known only then).
        self.providers: set[str] = set()

    async def refresh(
        self, redis: RedisClient, keys: RedisKeys, schedules: Sequence[RetrySchedule]
    ) -> None:
        """Read the circuits of the providers seen and each schedule's depth from Redis."""
        providers = sorted(self.providers)
        async with redis.pipeline(transaction=False) as pipe:
            for provider in providers:
                pipe.hget(keys.circuit(provider), "state")
            for schedule in schedules:
                pipe.zcard(schedule.due_key)
            answers = await pipe.execute()
        for provider, raw in zip(providers, answers[: len(providers)], strict=True):
            state = raw.decode() if isinstance(raw, bytes) else str(raw or "closed")
            for name in CIRCUIT_STATES:
                self.circuit_state.labels(provider, name).set(1.0 if name == state else 0.0)
        for schedule, depth in zip(schedules, answers[len(providers) :], strict=True):
            self.schedule_depth.labels(schedule.channel).set(float(depth))
