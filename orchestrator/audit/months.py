"""The monthly partitions of `audit_records`: which a batch needs, and creating them.

A batch never creates a month inside its own transaction. Creating a partition takes an
ACCESS EXCLUSIVE lock on `audit_records`, and every sink's batch holds ROW EXCLUSIVE on it
from its first statement on (`store.py`): two shards of the sink each creating a month in
their batch would wait for each other (a deadlock). So a batch that finds a month missing
stops (`MonthsMissingError`), its transaction rolls back, and the sink creates the month in a
transaction of its own, holding nothing else (it waits for the batches in flight to commit),
then writes the batch again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["MonthsMissingError", "create_months", "missing_months"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

# Any constant shared by every sink: serialises the creation of months.
_CREATE_LOCK = 0x0A_0D_17_01


class MonthsMissingError(Exception):
    """A batch needs months of `audit_records` that do not exist yet (the sink creates them
    and writes the batch again; never seen outside the sink)."""

    def __init__(self, months: list[str]) -> None:
        self.months = months
        super().__init__(f"audit_records has no partition {', '.join(months)} yet")


def _month_name(at: datetime) -> str:
    """The partition holding instant `at` (UTC): `audit_records_YYYY_MM`."""
    return f"audit_records_{at.year:04d}_{at.month:02d}"


async def missing_months(conn: Connection, instants: Iterable[datetime]) -> list[str]:
    """The partitions the instants fall in that do not exist, in one round trip."""
    names = sorted({_month_name(at) for at in instants})
    cur = await conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NULL ORDER BY name",
        (names,),
    )
    return [row[0] for row in await cur.fetchall()]


async def create_months(conn: Connection, names: Iterable[str]) -> None:
    """Create the named monthly partitions that still do not exist (one creator at a time)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CREATE_LOCK,))
        for name in sorted(set(names)):
            year, month = int(name[-7:-3]), int(name[-2:])
            following = (year + 1, 1) if month == 12 else (year, month + 1)
            await conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF audit_records"
                    " FOR VALUES FROM ({}) TO ({})"
                ).format(
                    sql.Identifier(name),
                    sql.Literal(f"{year:04d}-{month:02d}-01T00:00:00Z"),
                    sql.Literal(f"{following[0]:04d}-{following[1]:02d}-01T00:00:00Z"),
                )
            )
