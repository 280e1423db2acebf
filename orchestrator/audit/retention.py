"""Retention: drop the monthly partitions wholly older than a cutoff, leaving each chain a marker.

Rows are never deleted one by one: whole partitions of `audit_records` are dropped. In the
same transaction, each chain that loses records gets a marker (`audit_retention_markers`):
its newest dropped record's `seq` and hash, and how many of its records retention dropped.
`verify` starts the chain from the marker, so the first kept record links to it, and the
run itself is kept in `audit_retentions` (who, when, cutoff, partitions), which `verify`
prints. Deleting rows by hand leaves no marker, and is still named.

A chain's records are in the order they were stored, while partitions follow each record's
`at` (event time), so a record older than the cutoff may be stored after newer ones. Such a
record is dropped with its month; one stored before a dropped record but in a kept month
stays, below the marker, and `verify` checks its own hash and that none of them is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["Retention", "apply_retention", "partitions_older_than", "retentions"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

_PARTITION = re.compile(r"^audit_records_(\d{4})_(\d{2})$")


@dataclass(frozen=True, slots=True)
class Retention:
    """One retention run (`retention_id` None: a dry run, nothing dropped)."""

    retention_id: int | None
    ran_at: datetime
    operator: str
    cutoff: datetime
    partitions: tuple[str, ...]
    records: int
    chains: int

    def __str__(self) -> str:
        what = ", ".join(self.partitions) or "no partition"
        return (
            f"{what} ({self.records} records of {self.chains} chains) older than "
            f"{self.cutoff.isoformat()}"
        )


def _month_end(year: int, month: int) -> datetime:
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


async def partitions_older_than(conn: Connection, cutoff: datetime) -> list[tuple[str, datetime]]:
    """The monthly partitions whose every instant is before `cutoff`, with their ends."""
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'audit_records'::regclass ORDER BY c.relname"
    )
    found = []
    for (name,) in await cur.fetchall():
        match = _PARTITION.match(name)
        if match and (end := _month_end(int(match[1]), int(match[2]))) <= cutoff:
            found.append((name, end))
    return found


async def apply_retention(
    conn: Connection, cutoff: datetime, operator: str, *, dry_run: bool = False
) -> Retention:
    """Drop the partitions wholly older than `cutoff`, marking each chain that lost records."""
    async with conn.transaction():
        # The sink waits (readers do not): no record lands in a partition being dropped
        # after its chains' markers were taken; one retention run at a time.
        await conn.execute("LOCK TABLE audit_records IN SHARE ROW EXCLUSIVE MODE")
        await conn.execute("LOCK TABLE audit_retentions IN EXCLUSIVE MODE")
        partitions = await partitions_older_than(conn, cutoff)
        names = tuple(name for name, _ in partitions)
        dropped = sql.SQL(" UNION ALL ").join(
            sql.SQL("SELECT chain_id, seq, hash, record_id FROM {}").format(sql.Identifier(n))
            for n in names
        )
        cur = await conn.execute(
            "SELECT now(), coalesce(max(retention_id), 0) + 1 FROM audit_retentions"
        )
        now, retention_id = await cur.fetchone() or (datetime.now(UTC), 1)
        records = chains = 0
        if names:
            cur = await conn.execute(
                sql.SQL("SELECT count(*), count(DISTINCT chain_id) FROM ({}) d").format(dropped)
            )
            records, chains = await cur.fetchone() or (0, 0)
        if dry_run:
            return Retention(None, now, operator, cutoff, names, records, chains)
        await conn.execute(
            "INSERT INTO audit_retentions"
            " (retention_id, ran_at, operator, cutoff, partitions, records, chains)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (retention_id, now, operator, cutoff, list(names), records, chains),
        )
        if names:
            await _mark_chains(conn, dropped, retention_id)
            # Their ids too: nothing of a dropped record stays (all of them are before this).
            await conn.execute(
                "DELETE FROM audit_record_ids WHERE at < %s", (max(end for _, end in partitions),)
            )
            for name in names:
                await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
    return Retention(retention_id, now, operator, cutoff, names, records, chains)


async def _mark_chains(conn: Connection, dropped: sql.Composable, retention_id: int) -> None:
    """Move each chain's marker to its newest dropped record; add up what it lost."""
    await conn.execute(
        sql.SQL(
            "INSERT INTO audit_retention_markers AS m"
            " (chain_id, seq, hash, record_id, dropped, retention_id)"
            " SELECT DISTINCT ON (chain_id) chain_id, seq, hash, record_id,"
            "  count(*) OVER (PARTITION BY chain_id), %s"
            " FROM ({}) d ORDER BY chain_id, seq DESC"
            " ON CONFLICT (chain_id) DO UPDATE SET"
            # An earlier marker may be newer: a record older than both cutoffs stored late.
            "  seq = greatest(m.seq, excluded.seq),"
            "  hash = CASE WHEN excluded.seq > m.seq THEN excluded.hash ELSE m.hash END,"
            "  record_id = CASE WHEN excluded.seq > m.seq"
            "   THEN excluded.record_id ELSE m.record_id END,"
            "  dropped = m.dropped + excluded.dropped, retention_id = excluded.retention_id"
        ).format(dropped),
        (retention_id,),
    )


async def retentions(conn: Connection) -> list[Retention]:
    """Every retention run, oldest first."""
    cur = await conn.execute(
        "SELECT retention_id, ran_at, operator, cutoff, partitions, records, chains"
        " FROM audit_retentions ORDER BY retention_id"
    )
    return [
        Retention(int(r[0]), r[1], r[2], r[3], tuple(r[4]), int(r[5]), int(r[6]))
        for r in await cur.fetchall()
    ]
