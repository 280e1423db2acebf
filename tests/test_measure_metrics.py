"""The journey metrics collector reads at most every `max_age_s` and survives a lost database."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry, generate_latest

from orchestrator.audit.db import DatabaseUnavailableError, connection
from orchestrator.infra.settings import Settings
from orchestrator.measure.journeys import JourneyProjection
from orchestrator.measure.prometheus import Connection, JourneyMetrics
from tests.audit_harness import fresh_database


def _enter(n: int) -> dict[str, object]:
    return {
        "type": "enter", "record_id": f"e{n}", "at": "2026-06-01T10:00:00Z",
        "customer_id": f"c{n}", "journey": "j", "version": 1, "instance_id": "j:1",
    }  # fmt: skip


async def test_reads_are_cached_and_a_lost_database_serves_the_last_read(
    infrastructure: Settings,
) -> None:
    now = [100.0]
    collector = JourneyMetrics(max_age_s=5.0, clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(collector)
    async with fresh_database(infrastructure) as url:
        healthy = True

        @contextlib.asynccontextmanager
        async def lend() -> AsyncIterator[Connection]:
            if not healthy:
                raise DatabaseUnavailableError("PostgreSQL is away")
            async with connection(url) as conn:
                yield conn

        async def store(n: int) -> None:
            async with connection(url) as conn, conn.transaction():
                await JourneyProjection().apply(conn, [_enter(n)])

        def entered() -> str:
            text = generate_latest(registry).decode()
            return next(
                line
                for line in text.splitlines()
                if line.startswith("orchestrator_journey_entered_total")
            )

        await store(1)
        await collector.refresh(lend)
        assert entered().endswith(" 1.0")
        await store(2)
        now[0] += 4.9  # within max_age: no read
        await collector.refresh(lend)
        assert entered().endswith(" 1.0")
        now[0] += 0.2
        await collector.refresh(lend)
        assert entered().endswith(" 2.0")
        healthy = False
        now[0] += 10
        await collector.refresh(lend)  # no error: the last read stays
        assert entered().endswith(" 2.0")
