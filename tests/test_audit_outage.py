"""The audit sink rides out a PostgreSQL outage under load, and `/readyz` names PostgreSQL.

A private PostgreSQL server (free port, own data directory) is stopped and started; the
shared one is never touched.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.audit.db import connection, upgrade
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client
from tests.audit_harness import (
    SinkProcess,
    count_rows,
    customer_records,
    produce,
    stored_ids,
    wait_consumed,
)
from tests.outage_infra import PrivateServer, in_thread, private_postgres
from tests.runtime_harness import isolated_settings, prepare, wait_until

# The outage's length is the scenario (how long PostgreSQL stays away), not a wait for an
# event: the sink must keep polling, back off, and neither crash nor skip meanwhile.
OUTAGE_S = 15.0
# However long the outage, the sink says so in a bounded number of lines (backoff plus
# repeat suppression), not one per retry.
MAX_OUTAGE_LINES = 12


@pytest.fixture
async def postgres() -> AsyncIterator[tuple[PrivateServer, str]]:
    server, url = private_postgres()
    await in_thread(server.start)
    try:
        async with connection(url) as conn:
            await upgrade(conn)
        yield server, url
    finally:
        await in_thread(server.remove)


async def _publish(settings: Settings, topic: str, chunks: list[list[tuple[str, bytes]]]) -> None:
    """Publish chunk after chunk, keeping the topic growing through the outage."""
    for chunk in chunks:
        await produce(settings, topic, chunk)


async def test_sink_waits_out_a_postgres_outage_and_stores_every_record_once(
    infrastructure: Settings, postgres: tuple[PrivateServer, str], tmp_path: Path
) -> None:
    server, url = postgres
    settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=250)
    topics = await prepare(settings)
    records = [r for n in range(30) for r in customer_records(f"o{n}", 200)]
    values = [(r.customer_id, r.to_json()) for r in records]
    chunks = [values[i : i + 500] for i in range(0, len(values), 500)]
    log = tmp_path / "sink.log"
    sink = SinkProcess(settings, log)
    try:
        await produce(settings, topics.interactions, chunks[0])
        await wait_until(lambda: _stored_some(url), "the sink's first batches", timeout=60)
        before = log.read_text()
        await in_thread(server.stop)
        # Load keeps arriving while PostgreSQL is away.
        publishing = asyncio.create_task(_publish(settings, topics.interactions, chunks[1:]))
        await wait_until(
            lambda: _logged(log, len(before), "postgres"), "the sink reports PostgreSQL down"
        )
        await asyncio.sleep(OUTAGE_S)
        assert sink.process.poll() is None, log.read_text()
        await publishing
        during = log.read_text()[len(before) :].splitlines()
        assert len(during) <= MAX_OUTAGE_LINES, "\n".join(during)
        started = time.monotonic()
        await in_thread(server.start)
        # No restart, no nudge: the sink notices PostgreSQL is back and catches up.
        await wait_consumed(settings, url, topics.interactions)
        caught_up = time.monotonic() - started
    finally:
        code = sink.terminate()
    assert code == 0, log.read_text()
    ids = await stored_ids(url)
    assert len(ids) == len(set(ids)) == len(records)
    assert ids == sorted(r.record_id for r in records)
    assert caught_up < 120


async def _stored_some(url: str) -> bool:
    return await count_rows(url) > 0


def _logged(log: Path, offset: int, word: str) -> bool:
    return word in log.read_text()[offset:].lower()


async def test_readyz_names_postgres_while_it_is_down(
    infrastructure: Settings, postgres: tuple[PrivateServer, str]
) -> None:
    server, url = postgres
    settings = isolated_settings(infrastructure, database_url=url)
    await prepare(settings)
    async with api_client(settings) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["postgres"] is True
        await in_thread(server.stop)
        down = await client.get("/readyz")
        assert down.status_code == 503, down.text
        body = down.json()
        assert body["code"] == "postgres_unavailable"
        assert body["postgres"] is False and body["kafka"] is True and body["redis"] is True
        assert "PostgreSQL" in body["message"]
        await in_thread(server.start)

        async def ready_again() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await wait_until(ready_again, "/readyz recovers after PostgreSQL returns", timeout=60)
