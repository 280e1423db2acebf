"""Helpers for audit store tests: a fresh database per test, records to produce, a sink."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orchestrator.audit.db import connect, connection, upgrade
from orchestrator.audit.projection import Projection
from orchestrator.audit.sink import AuditSink
from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.interactions import InboundInteraction, SendInteraction
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import partitions_of
from tests.runtime_harness import OrchestratorProcess, wait_until

__all__ = [
    "SinkProcess",
    "count_rows",
    "customer_records",
    "fresh_database",
    "produce",
    "put_back_row",
    "running_sink",
    "stored_ids",
    "take_row",
    "wait_consumed",
    "wait_stored",
]


@contextlib.asynccontextmanager
async def fresh_database(settings: Settings) -> AsyncIterator[str]:
    """A new, migrated database on the settings' server; its URL. Dropped afterwards."""
    name = f"audit_test_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(settings.database_url)
    admin_url = parts._replace(path="/postgres").geturl()
    url = parts._replace(path=f"/{name}").geturl()
    async with connection(admin_url) as admin:
        await admin.execute(f"CREATE DATABASE {name}".encode())
    try:
        async with connection(url) as conn:
            await upgrade(conn)
        yield url
    finally:
        async with connection(admin_url) as admin:
            await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def customer_records(customer: str, count: int) -> list[Any]:
    """`count` alternating inbound events and sends of one customer, with their own email
    address and phone number in personal fields."""
    records: list[Any] = []
    phone = f"+1555{zlib.crc32(customer.encode()) % 10_000_000:07d}"
    for n in range(count):
        at = f"2026-06-{1 + n % 28:02d}T10:{n // 60 % 60:02d}:{n % 60:02d}Z"
        if n % 2 == 0:
            event = EventRecord(
                event_id=f"{customer}-e{n}",
                customer_id=customer,
                name="order.placed",
                occurred_at=at,
                channel="web",
                properties={"email": f"{customer}@example.com", "phone": phone, "n": n},
            )
            records.append(
                InboundInteraction(
                    record_id=f"in:{customer}-e{n}",
                    at=at,
                    received_at=at,
                    customer_id=customer,
                    event=event,
                )
            )
        else:
            records.append(
                SendInteraction(
                    record_id=f"send:{customer}-m{n}",
                    at=at,
                    customer_id=customer,
                    journey="j1",
                    step="s1",
                    channel="sms",
                    template="t1",
                    category="marketing",
                    consent="opted_in",
                    content={"to": phone, "body": f"Hello {customer} #{n}"},
                    message_id=f"{customer}-m{n}",
                    version=1,
                    instance_id="i1",
                    caused_by=f"{customer}-e{n - 1}",
                )
            )
    return records


async def produce(settings: Settings, topic: str, values: list[tuple[str, bytes]]) -> None:
    """Send (key, value) pairs to `topic` and wait until the broker has them all."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        sends = [await producer.send(topic, value, key=key.encode()) for key, value in values]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def count_rows(url: str, table: str = "audit_records") -> int:
    """Rows in `table`."""
    async with connection(url) as conn:
        cur = await conn.execute(f"SELECT count(*) FROM {table}".encode())
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def stored_ids(url: str) -> list[str]:
    """Every stored record id (with repeats, if there were any)."""
    async with connection(url) as conn:
        cur = await conn.execute("SELECT record_id FROM audit_records ORDER BY record_id")
        return [r[0] for r in await cur.fetchall()]


async def wait_consumed(settings: Settings, url: str, topic: str) -> None:
    """Wait until the offsets stored in the database reach the end of every partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        numbers = await partitions_of(settings.kafka_bootstrap, topic)
        partitions = [TopicPartition(topic, p) for p in numbers]
        ends = {tp.partition: end for tp, end in (await consumer.end_offsets(partitions)).items()}
    finally:
        await consumer.stop()

    async def reached() -> bool:
        conn = await connect(url)
        try:
            cur = await conn.execute("SELECT partition, next_offset FROM audit_offsets")
            stored = {int(r[0]): int(r[1]) for r in await cur.fetchall()}
        finally:
            await conn.close()
        return all(stored.get(p, 0) >= end for p, end in ends.items() if end)

    await wait_until(reached, f"audit offsets at the end of {topic} ({ends})")


@contextlib.asynccontextmanager
async def running_sink(
    settings: Settings, projections: Sequence[Projection] = ()
) -> AsyncIterator[AuditSink]:
    """An in-process audit sink (feeding `projections`) running in a task for the block."""
    sink = AuditSink(settings, projections)
    await sink.start()
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        sink.stop()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await sink.close()


async def wait_stored(url: str, count: int, what: str) -> None:
    """Wait until `audit_records` holds `count` rows."""
    await wait_until(lambda: _has(url, count), what)


async def _has(url: str, count: int) -> bool:
    return await count_rows(url) >= count


class SinkProcess(OrchestratorProcess):
    """`orchestrator audit-sink` in a subprocess."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        super().__init__(settings, log_path, "audit-sink")


async def take_row(conn: Any, record_id: str) -> str:
    """Move a row out of the table into a table of its own; returns that table's name."""
    saved = "saved_" + record_id.replace(":", "_").replace("-", "_")
    await conn.execute(
        f"CREATE TABLE {saved} AS SELECT * FROM audit_records WHERE record_id = %s".encode(),
        (record_id,),
    )
    await conn.execute("DELETE FROM audit_records WHERE record_id = %s", (record_id,))
    return saved


async def put_back_row(conn: Any, saved: str) -> None:
    """Put a row `take_row` moved out back where it was."""
    await conn.execute(f"INSERT INTO audit_records SELECT * FROM {saved}".encode())
