"""Rebuilding the journey figures from every record in the audit store.

The sink keeps the figures current from the moment migration 0003 is applied; records
stored before then (or figures after a fix to the projection) need a rebuild. It runs in one
transaction that first locks the figure tables (`ACCESS EXCLUSIVE`): a sink batch that
arrives meanwhile waits at its projection, uncommitted and so unseen by the rebuild's read,
and is folded in after the rebuild commits. Nothing is counted twice or missed.

Records are read per customer in stored order (`chain_id`, `seq`: the order of the
customer's partition), which is all the projection needs. Personal fields are opened with
each customer's key; an erased customer's receipts name no readable message id any more,
so they are not counted again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from orchestrator.audit.personal import PersonalFields
from orchestrator.measure.journeys import JourneyProjection

__all__ = ["JOURNEY_TABLES", "rebuild_journey_figures"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

JOURNEY_TABLES = (
    "measure_instances",
    "measure_arms",
    "measure_steps",
    "measure_edges",
    "measure_sent",
    "measure_receipts",
    "measure_messages",
)
"""The tables of the journey projection (migration 0003)."""

_BATCH = 2000


async def rebuild_journey_figures(conn: Connection, personal: PersonalFields) -> int:
    """Empty the journey figure tables and fold every stored record into them again;
    returns how many records were read."""
    projection = JourneyProjection()
    tables = psycopg.sql.SQL(", ").join(psycopg.sql.Identifier(t) for t in JOURNEY_TABLES)
    read = 0
    async with conn.transaction():
        await conn.execute(psycopg.sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(tables))
        await conn.execute(psycopg.sql.SQL("TRUNCATE {}").format(tables))
        async with conn.cursor(name="measure_rebuild") as cur:
            await cur.execute(
                "SELECT customer_id, record_id, body FROM audit_records ORDER BY chain_id, seq"
            )
            while rows := await cur.fetchmany(_BATCH):
                keys = await _keys(conn, {r[0] for r in rows if r[0] is not None})
                records = [
                    personal.open(body, keys.get(customer), record_id) if customer else body
                    for customer, record_id, body in rows
                ]
                await projection.apply(conn, records)
                read += len(rows)
    return read


async def _keys(conn: Connection, customers: set[str]) -> dict[str, bytes | None]:
    """The customers' data keys (None once erased)."""
    cur = await conn.execute(
        "SELECT customer_id, key FROM audit_customer_keys WHERE customer_id = ANY(%s)",
        (sorted(customers),),
    )
    return {r[0]: (bytes(r[1]) if r[1] is not None else None) for r in await cur.fetchall()}
