"""The sink feeds projections each batch's newly stored records, in the batch's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from orchestrator.audit.db import connection
from orchestrator.audit.projection import StoredRecord
from orchestrator.infra.settings import Settings
from tests.audit_harness import (
    count_rows,
    customer_records,
    fresh_database,
    produce,
    running_sink,
    wait_consumed,
)
from tests.runtime_harness import isolated_settings, prepare


class SeenIds:
    """Writes each record id it is given into `seen`, in the sink's transaction."""

    name = "seen-ids"

    def __init__(self) -> None:
        self.batches = 0

    async def apply(
        self, conn: psycopg.AsyncConnection[tuple[Any, ...]], records: Sequence[StoredRecord]
    ) -> None:
        self.batches += 1
        async with conn.cursor() as cur:
            # No ON CONFLICT: a record seen twice would fail the batch.
            await cur.executemany(
                "INSERT INTO seen (record_id, customer_id) VALUES (%s, %s)",
                [(r["record_id"], r["customer_id"]) for r in records],
            )


async def test_projections_see_each_stored_record_once_in_order(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url:
        async with connection(url) as conn:
            await conn.execute(
                "CREATE TABLE seen"
                " (n bigserial PRIMARY KEY, record_id text UNIQUE, customer_id text)"
            )
        settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=7)
        topics = await prepare(settings)
        records = [r for c in ("p1", "p2", "p3") for r in customer_records(c, 12)]
        values = [(r.customer_id, r.to_json()) for r in records]
        await produce(settings, topics.interactions, values + values[:9])
        projection = SeenIds()
        async with running_sink(settings, [projection]) as sink:
            await wait_consumed(settings, url, topics.interactions)
        assert sink.duplicates == 9 and projection.batches > 1
        assert await count_rows(url, "seen") == len(records)
        async with connection(url) as conn:
            cur = await conn.execute("SELECT customer_id, record_id FROM seen ORDER BY n")
            rows = await cur.fetchall()
        # Each customer's records reached the projection in the order they were produced.
        for customer in ("p1", "p2", "p3"):
            mine = [record_id for c, record_id in rows if c == customer]
            assert mine == [r.record_id for r in records if r.customer_id == customer]
        # A restart reads nothing again, so the projection is given nothing.
        again = SeenIds()
        async with running_sink(settings, [again]):
            await wait_consumed(settings, url, topics.interactions)
        assert again.batches == 0


class FailsOnce(SeenIds):
    """Fails its first batch, after writing: the batch must roll back, records included."""

    async def apply(
        self, conn: psycopg.AsyncConnection[tuple[Any, ...]], records: Sequence[StoredRecord]
    ) -> None:
        await super().apply(conn, records)
        if self.batches == 1:
            raise psycopg.OperationalError("projection lost its connection")


async def test_a_failed_projection_rolls_its_batch_back_and_the_sink_retries_it(
    infrastructure: Settings,
) -> None:
    async with fresh_database(infrastructure) as url:
        async with connection(url) as conn:
            await conn.execute("CREATE TABLE seen (record_id text PRIMARY KEY, customer_id text)")
        settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=5)
        topics = await prepare(settings)
        records = customer_records("f1", 10)
        await produce(
            settings, topics.interactions, [(r.customer_id, r.to_json()) for r in records]
        )
        projection = FailsOnce()
        async with running_sink(settings, [projection]) as sink:
            await wait_consumed(settings, url, topics.interactions)
        # The failed batch's rows (records and projection alike) were rolled back, then the
        # retry wrote them once: the primary key on `seen` would have refused a second copy.
        assert projection.batches >= 3 and sink.stored == len(records)
        assert await count_rows(url, "seen") == await count_rows(url) == len(records)
