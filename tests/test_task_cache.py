"""Task figures kept per customer (`measure/task_cache.py`) against the one pass over the store.

Records go in through the audit store's own write path (`commit_batch`, as the sink commits
them) into a fresh PostgreSQL database; each call's `Refresh` says how many customers and
records it read again, so "reads only what changed" is counted, not timed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.audit.db import connection
from orchestrator.audit.erasure import erase_customer
from orchestrator.audit.offsets import stored_offsets
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.retention import apply_retention
from orchestrator.audit.store import SourceRecord, commit_batch, decode_batch
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.journey.tasks import CompiledTask
from orchestrator.measure.task_cache import (
    REFRESH_LOCK,
    Refresh,
    clear_task_cache,
    measure_tasks,
    refresh,
    task_digest,
)
from orchestrator.measure.task_reader import full_pass
from orchestrator.measure.tasks import Interaction, TaskFigures
from tests.audit_harness import fresh_database
from tests.runtime_harness import wait_until
from tests.task_histories import HISTORIES, ORDER_TASK, H, inbound, send, step, task, wire_record

PERSONAL = PersonalFields.from_setting(Settings().audit_personal_fields)
Connection = Any
# A task with neither `match` nor `when`: an erased customer's spans still count for it.
PLAIN_TASK = """\
id: first-order
description: First order to delivery
starts: {event: order.completed}
ends: {event: order.delivered}
process:
  starts: {event: order.completed}
  ends: {event: order.shipped}
"""


@pytest.fixture
async def fresh_url(infrastructure: Settings) -> AsyncIterator[str]:
    """A new, migrated audit database for the test."""
    async with fresh_database(infrastructure) as url:
        yield url


class Store:
    """Writes customers' histories through the audit store's write path, numbering their
    records on from what each customer already has."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.written: dict[str, int] = {}
        self.offset = 0

    async def add(self, histories: Mapping[str, Sequence[Interaction]]) -> None:
        values = []
        for customer, history in histories.items():
            first = self.written.get(customer, 0)
            values += [
                wire_record(customer, first + i, item).to_json() for i, item in enumerate(history)
            ]
            self.written[customer] = first + len(history)
        batch = [SourceRecord(0, self.offset + i, value) for i, value in enumerate(values)]
        self.offset += len(batch)
        offsets = await stored_offsets(self.conn, "interactions")
        decoded = await decode_batch(batch)
        await commit_batch(self.conn, "interactions", decoded, PERSONAL, offsets)


async def _both(
    conn: Connection, tasks: Sequence[CompiledTask]
) -> tuple[list[TaskFigures], list[TaskFigures]]:
    """(cached, one pass) figures."""
    return await measure_tasks(conn, tasks, PERSONAL), await full_pass(conn, tasks, PERSONAL)


async def _rows(conn: Connection, sql: str) -> int:
    cur = await conn.execute(sql)
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def test_hand_computed_figures_come_from_the_cache_and_a_second_call_reads_nothing(
    infrastructure: Settings, fresh_url: str
) -> None:
    tasks = [task()]
    async with connection(fresh_url) as conn:
        await Store(conn).add(HISTORIES)
        first = await refresh(conn, tasks, PERSONAL)
        records = sum(len(h) for h in HISTORIES.values())
        assert first == Refresh(customers=5, stale=5, records=records)
        cached, one_pass = await _both(conn, tasks)
        assert await refresh(conn, tasks, PERSONAL) == Refresh(5, 0, 0)
    assert cached == one_pass
    [figures] = cached
    # The values `tests/test_task_figures.py` works out by hand.
    assert (figures.customers, figures.completions) == (4, 5)
    assert figures.customer_time.median_seconds == 40 * H
    assert figures.process_time.p90_seconds == 19.8 * H
    assert figures.gap_seconds == 147 * H


async def test_only_customers_with_new_records_are_read_again(
    infrastructure: Settings, fresh_url: str
) -> None:
    tasks = [task(), task(PLAIN_TASK)]
    async with connection(fresh_url) as conn:
        store = Store(conn)
        await store.add(HISTORIES)
        await refresh(conn, tasks, PERSONAL)
        # Eve's order ships and arrives; nobody else does anything.
        news = [inbound(30, "order.shipped", 8), inbound(50, "order.delivered", 8)]
        await store.add({"eve": news})
        assert await refresh(conn, tasks, PERSONAL) == Refresh(5, 1, 1 + len(news))
        cached, one_pass = await _both(conn, tasks)
    assert cached == one_pass
    assert [(f.task, f.customers, f.completions) for f in cached] == [
        ("order-to-doorstep", 5, 6),
        ("first-order", 5, 5),
    ]


async def test_a_cleared_cache_is_computed_again(infrastructure: Settings, fresh_url: str) -> None:
    """What `orchestrator measure rebuild` does to the kept rows."""
    tasks = [task(), task(PLAIN_TASK)]
    async with connection(fresh_url) as conn:
        await Store(conn).add(HISTORIES)
        await refresh(conn, tasks, PERSONAL)
        assert await clear_task_cache(conn) == 2 * len(HISTORIES)
        assert (await refresh(conn, tasks, PERSONAL)).stale == len(HISTORIES)
        cached, one_pass = await _both(conn, tasks)
    assert cached == one_pass


async def test_calls_at_once_read_the_store_once(infrastructure: Settings, fresh_url: str) -> None:
    tasks = [task()]
    async with (
        connection(fresh_url) as conn,
        connection(fresh_url) as one,
        connection(fresh_url) as two,
    ):
        await Store(conn).add(HISTORIES)
        # Held here, so that both calls are under way before either can go on.
        await conn.execute("SELECT pg_advisory_lock(%s)", (REFRESH_LOCK,))
        calls = [asyncio.create_task(refresh(c, tasks, PERSONAL)) for c in (one, two)]

        async def both_wait() -> bool:
            waiting = await _rows(
                conn,
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                " WHERE d.datname = current_database() AND l.locktype = 'advisory'"
                " AND NOT l.granted",
            )
            return waiting == 2

        await wait_until(both_wait, "both calls waiting for the refresh lock")
        await conn.execute("SELECT pg_advisory_unlock(%s)", (REFRESH_LOCK,))
        done = await asyncio.gather(*calls)
    assert sorted(found.stale for found in done) == [0, 5]


async def test_a_changed_definition_is_computed_again_and_its_old_rows_go(
    infrastructure: Settings, fresh_url: str
) -> None:
    async with connection(fresh_url) as conn:
        await Store(conn).add(HISTORIES)
        await refresh(conn, [task()], PERSONAL)
        # The description is not part of what spans depend on: nothing to read again.
        described = task(ORDER_TASK.replace("Order to doorstep", "Ordered to delivered"))
        assert task_digest(described) == task_digest(task())
        assert await refresh(conn, [described], PERSONAL) == Refresh(5, 0, 0)
        [figures] = await measure_tasks(conn, [described], PERSONAL)
        assert figures.description == "Ordered to delivered"
        # A shorter `within` changes the spans: every customer is read again.
        shorter = task(ORDER_TASK.replace("within: 30d", "within: 2d"))
        assert task_digest(shorter) != task_digest(task())
        assert (await refresh(conn, [shorter], PERSONAL)).stale == 5
        cached, one_pass = await _both(conn, [shorter])
        kept = await _rows(conn, "SELECT count(DISTINCT digest) FROM measure_task_customers")
        definitions = await _rows(conn, "SELECT count(*) FROM measure_task_definitions")
    assert cached == one_pass
    # Anna's 72 h and Dora's first order are past 2 days; Carl's NW-5 takes 48 h: it counts.
    assert cached[0].completions == 4
    assert (kept, definitions) == (1, 1)


async def test_erasure_drops_the_customers_rows_and_their_spans_are_computed_again(
    infrastructure: Settings, fresh_url: str
) -> None:
    tasks = [task(), task(PLAIN_TASK)]
    redis = connect_redis(infrastructure)
    try:
        async with connection(fresh_url) as conn:
            await Store(conn).add(HISTORIES)
            await measure_tasks(conn, tasks, PERSONAL)
            keys = RedisKeys(infrastructure.redis_prefix)
            await erase_customer(conn, redis, keys, "anna", "dpo@example.com")
            left = await _rows(
                conn, "SELECT count(*) FROM measure_task_customers WHERE customer_id = 'anna'"
            )
            assert await refresh(conn, tasks, PERSONAL) == Refresh(5, 1, len(HISTORIES["anna"]))
            cached, one_pass = await _both(conn, tasks)
    finally:
        await redis.aclose()
    assert left == 0
    assert cached == one_pass
    # `match: order_id` no longer sees Anna's orders; the plain task still counts her.
    assert [(f.customers, f.completions) for f in cached] == [(3, 4), (4, 4)]


async def test_a_row_computed_before_an_erasure_is_not_taken_for_current(
    infrastructure: Settings, fresh_url: str
) -> None:
    """A call that read Anna's records before her erasure and wrote its rows after it."""
    tasks = [task()]
    redis = connect_redis(infrastructure)
    try:
        async with connection(fresh_url) as conn:
            await Store(conn).add(HISTORIES)
            await refresh(conn, tasks, PERSONAL)
            cur = await conn.execute("SELECT * FROM measure_task_customers")
            before = await cur.fetchall()
            keys = RedisKeys(infrastructure.redis_prefix)
            await erase_customer(conn, redis, keys, "anna", "dpo@example.com")
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO measure_task_customers VALUES (%s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    before,
                )
            assert (await refresh(conn, tasks, PERSONAL)).stale == 1
            cached, one_pass = await _both(conn, tasks)
    finally:
        await redis.aclose()
    assert cached == one_pass


async def test_retention_makes_the_customers_it_cut_be_read_again(
    infrastructure: Settings, fresh_url: str
) -> None:
    tasks = [task(), task(PLAIN_TASK)]
    # Frank's records are all in July (hour 720 on is 2026-07-01): retention leaves him be.
    frank = [inbound(730, "order.completed", 9, "web"), inbound(760, "order.delivered", 9)]
    async with connection(fresh_url) as conn:
        await Store(conn).add({**HISTORIES, "frank": frank})
        await measure_tasks(conn, tasks, PERSONAL)
        await apply_retention(conn, datetime(2026, 7, 1, tzinfo=UTC), "dpo@example.com")
        # Carl's record of hour 800 and Dora's of hour 1000 on are in July: the five lost
        # their June records, and what Carl and Dora have left is read again.
        again = await refresh(conn, tasks, PERSONAL)
        cached, one_pass = await _both(conn, tasks)
    assert again == Refresh(6, 5, 1 + 3)
    assert cached == one_pass
    assert [(f.customers, f.completions) for f in cached] == [(2, 2), (2, 2)]  # Dora, Frank


# Generated histories: a few customers, a few orders each, any of the events a task reads,
# at times whose seconds are not whole (the gap's sums then depend on their order).
_HOURS = st.integers(0, 800_000).map(lambda n: n / 1000)
_NAMES = ("order.completed", "order.shipped", "order.delivered", "message.replied")
_ITEMS = st.one_of(
    st.builds(
        inbound,
        _HOURS,
        st.sampled_from(_NAMES),
        st.one_of(st.none(), st.integers(1, 3)),
        st.sampled_from((None, "web", "email")),
    ),
    st.builds(
        send,
        _HOURS,
        st.just("order-updates"),
        st.sampled_from(("shipped", "watch")),
        st.sampled_from(("email", "sms")),
    ),
    st.builds(step, _HOURS, st.just("order-updates"), st.just("watch")),
)
_CUSTOMERS = st.sampled_from(("c1", "c2", "c3", "c4", "c5", "c6"))
_ROUND = st.dictionaries(_CUSTOMERS, st.lists(_ITEMS, min_size=1, max_size=6), max_size=4)


async def _empty(conn: Connection) -> None:
    await conn.execute(
        "TRUNCATE audit_records, audit_record_ids, audit_chain_heads, audit_customer_keys,"
        " audit_offsets, measure_task_definitions, measure_task_customers"
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rounds=st.lists(_ROUND, min_size=1, max_size=3))
def test_generated_histories_give_the_one_pass_figures_reading_only_who_changed(
    fresh_url: str, rounds: list[dict[str, list[Interaction]]]
) -> None:
    tasks = [task(), task(PLAIN_TASK)]

    async def run() -> None:
        async with connection(fresh_url) as conn:
            await _empty(conn)
            store = Store(conn)
            for histories in rounds:
                await store.add(histories)
                done = await refresh(conn, tasks, PERSONAL)
                assert (done.customers, done.stale) == (len(store.written), len(histories))
                assert done.records == sum(store.written[c] for c in histories)
                cached, one_pass = await _both(conn, tasks)
                assert cached == one_pass

    asyncio.run(run())
