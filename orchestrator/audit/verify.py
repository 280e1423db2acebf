"""Verifying the audit store: every chain's hashes and links, its head, and the checkpoints.

Rows are read chain by chain in `seq` order (a server-side cursor, so memory stays flat) and
each is checked against the one before it. The first problem found is reported, naming the
record and what is wrong: a row changed (its hash no longer matches its content), a row
deleted (a gap in `seq`), the newest rows of a chain deleted (the chain ends before its head
or before a checkpointed head), a whole chain deleted, or a checkpoint changed or removed.
A chain that retention cut starts at its marker (`retention.py`) instead of at `seq` 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from orchestrator.audit.chain import GENESIS, ChainRow, row_hash
from orchestrator.audit.checkpoint import Checkpoint, broken_checkpoint
from orchestrator.audit.retention import Retention, retentions

__all__ = ["Broken", "VerifyReport", "verify"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

# Each row with its chain's retention marker (NULLs: retention never dropped any of it).
_ROWS = (
    "SELECT r.chain_id, r.seq, r.record_id, r.at, r.kind, r.customer_id, r.direction,"
    " r.channel, r.journey, r.body::text, r.prev_hash, r.hash, m.seq, m.hash, m.record_id,"
    " m.dropped FROM audit_records r"
    " LEFT JOIN audit_retention_markers m ON m.chain_id = r.chain_id"
)


@dataclass(frozen=True, slots=True)
class Broken:
    """The first problem found: which chain and record, and what is wrong."""

    chain_id: str
    record_id: str | None
    problem: str

    def __str__(self) -> str:
        where = f"record {self.record_id} of {self.chain_id}" if self.record_id else self.chain_id
        return f"{where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What was checked, the newest checkpoint, retention runs, the first problem (None: intact)."""

    chains: int
    records: int
    checkpoint: Checkpoint | None
    broken: Broken | None
    retentions: list[Retention]


@dataclass(slots=True)
class _Marker:
    """A chain's retention marker, and how many of its kept records are below it so far."""

    seq: int
    hash: bytes
    record_id: str
    dropped: int
    below: int = 0

    def missing_below(self, chain_id: str) -> Broken | None:
        """Kept records below the marker that are gone (it knows how many retention took)."""
        missing = self.seq - self.dropped - self.below
        if missing == 0:
            return None
        return Broken(
            chain_id, None,
            f"{missing} of its records numbered up to its retention marker (#{self.seq}) "
            "and kept by retention are missing (deleted)",
        )  # fmt: skip


async def verify(
    conn: Connection,
    customer: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> VerifyReport:
    """Check the whole store, one chain (`customer`), or the records in [since, until).

    In a time range, the first record of each chain in it is taken as it is (its
    predecessor is outside), and heads and checkpoints are checked only without `until`.
    """
    where: list[str] = []
    params: list[object] = []
    if customer is not None:
        where.append("r.chain_id = %s")
        params.append(customer)
    if since is not None:
        where.append("r.at >= %s")
        params.append(since)
    if until is not None:
        where.append("r.at < %s")
        params.append(until)
    query = _ROWS + (" WHERE " + " AND ".join(where) if where else "")
    query += " ORDER BY r.chain_id, r.seq"
    whole = since is None and until is None
    chains = records = 0
    last: tuple[str, int, bytes, str] | None = None  # chain, seq, hash, record id
    marker: _Marker | None = None
    broken: Broken | None = None
    async with conn.transaction(), conn.cursor(name="audit_verify") as cur:
        cur.itersize = 2000
        await cur.execute(sql.SQL(query), params)
        async for r in cur:
            row = ChainRow(r[0], int(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])
            prev_hash, stored = bytes(r[10]), bytes(r[11])
            records += 1
            if last is None or last[0] != row.chain_id:
                chains += 1
                if whole and marker is not None and last is not None:
                    broken = marker.missing_below(last[0])
                    if broken is not None:
                        break
                last, marker = None, None
                if r[12] is not None:
                    # Retention dropped this chain's oldest records: it continues from here.
                    marker = _Marker(int(r[12]), bytes(r[13]), r[14], int(r[15]))
                    last = (row.chain_id, marker.seq, marker.hash, marker.record_id)
            if marker is not None and row.seq <= marker.seq:
                # Kept below the marker (older by time, stored later): its own hash only.
                marker.below += 1
                broken = _changed(row, prev_hash, stored)
            else:
                broken = _check(row, prev_hash, stored, last, since)
                last = (row.chain_id, row.seq, stored, row.record_id)
            if broken is not None:
                break
        else:
            if whole and marker is not None and last is not None:
                broken = marker.missing_below(last[0])
    checkpoint, problem = await broken_checkpoint(conn)
    if broken is None and problem is not None:
        broken = Broken("checkpoints", None, problem)
    if broken is None and until is None:
        broken = await _check_heads(conn, customer)
    return VerifyReport(chains, records, checkpoint, broken, await retentions(conn))


def _changed(row: ChainRow, prev_hash: bytes, stored: bytes) -> Broken | None:
    if row_hash(prev_hash, row) != stored:
        return Broken(
            row.chain_id, row.record_id,
            f"record #{row.seq} was changed: its content no longer matches its hash",
        )  # fmt: skip
    return None


def _check(
    row: ChainRow,
    prev_hash: bytes,
    stored: bytes,
    last: tuple[str, int, bytes, str] | None,
    since: datetime | None,
) -> Broken | None:
    """What is wrong with `row` given the row before it in its chain (None: its first)."""
    if last is None:
        if since is None and row.seq != 1:
            return Broken(
                row.chain_id, row.record_id,
                f"records #1 to #{row.seq - 1} before it are missing (deleted)",
            )  # fmt: skip
        if since is None and prev_hash != GENESIS:
            return Broken(row.chain_id, row.record_id, "the first record does not start a chain")
    elif row.seq != last[1] + 1:
        return Broken(
            row.chain_id, row.record_id,
            f"record #{last[1] + 1} before it (after {last[3]}, #{last[1]}) is missing "
            "(deleted)" if row.seq == last[1] + 2 else
            f"records #{last[1] + 1} to #{row.seq - 1} before it (after {last[3]}) are missing "
            "(deleted)",
        )  # fmt: skip
    elif prev_hash != last[2]:
        return Broken(row.chain_id, row.record_id, "its link to the record before it was changed")
    return _changed(row, prev_hash, stored)


async def _check_heads(conn: Connection, customer: str | None) -> Broken | None:
    """Each chain's newest row must be its head, and hold each checkpointed head."""
    only = "WHERE h.chain_id = %s" if customer is not None else ""
    params = (customer,) if customer is not None else ()
    cur = await _heads_query(conn, only, params)
    row = await cur.fetchone()
    if row is not None:
        return _ended_early(row[0], int(row[1]), row[2], row[3], "its head")
    cur = await conn.execute(
        "SELECT DISTINCT ON (c.chain_id) c.chain_id, c.seq, c.checkpoint_id,"  # noqa: S608
        " r.record_id IS NULL, c.hash = r.hash,"
        " (SELECT max(seq) FROM audit_records m WHERE m.chain_id = c.chain_id),"
        " (SELECT record_id FROM audit_records m WHERE m.chain_id = c.chain_id"
        "  ORDER BY seq DESC LIMIT 1),"
        " coalesce(c.seq <= k.seq, false), coalesce(c.seq = k.seq AND c.hash <> k.hash, false)"
        " FROM audit_checkpoint_heads c"
        " LEFT JOIN audit_records r ON r.chain_id = c.chain_id AND r.seq = c.seq"
        " LEFT JOIN audit_retention_markers k ON k.chain_id = c.chain_id"
        f" {only.replace('h.', 'c.')}"
        " ORDER BY c.chain_id, c.checkpoint_id DESC",
        params,
    )
    async for chain_id, seq, checkpoint_id, missing, same, newest, newest_id, *marker in cur:
        retained, marker_differs = marker
        if marker_differs:
            return Broken(
                chain_id, None, f"its retention marker (#{seq}) differs from the record "
                f"checkpoint {checkpoint_id} saw (rewritten chain)",
            )  # fmt: skip
        if retained and missing:
            continue  # dropped by retention, which left a marker
        if missing:
            return _ended_early(
                chain_id, int(seq), newest, newest_id, f"checkpoint {checkpoint_id}"
            )
        if not same:
            return Broken(
                chain_id, None, f"record #{seq} differs from the one checkpoint "
                f"{checkpoint_id} saw (rewritten chain)",
            )  # fmt: skip
    return None


async def _heads_query(
    conn: Connection, only: str, params: tuple[str, ...]
) -> psycopg.AsyncCursor[tuple[Any, ...]]:
    """Heads whose chain does not end at them (newest row missing, or rows past the head)."""
    return await conn.execute(
        "SELECT h.chain_id, h.seq, r.seq, r.record_id FROM audit_chain_heads h"  # noqa: S608
        " LEFT JOIN LATERAL (SELECT seq, record_id, hash FROM audit_records"
        "  WHERE chain_id = h.chain_id ORDER BY seq DESC LIMIT 1) r ON true"
        " LEFT JOIN audit_retention_markers k ON k.chain_id = h.chain_id"
        # The chain ends at its head, or retention dropped everything up to its head.
        " WHERE NOT (coalesce(r.seq = h.seq AND r.hash = h.hash, false)"
        "  OR coalesce(k.seq = h.seq AND k.hash = h.hash AND coalesce(r.seq < h.seq, true), false))"
        f" {only.replace('WHERE', 'AND')} ORDER BY h.chain_id LIMIT 1",
        params,
    )


def _ended_early(
    chain_id: str, seq: int, newest: int | None, newest_id: str | None, by: str
) -> Broken:
    if newest is None:
        return Broken(chain_id, None, f"every record is missing (deleted); {by} says #{seq}")
    if newest < seq:
        return Broken(
            chain_id, None,
            f"its newest records are missing (deleted): {by} says #{seq}, "
            f"the store ends at #{newest} ({newest_id})",
        )  # fmt: skip
    return Broken(chain_id, newest_id, f"record #{newest} does not match {by} (#{seq})")
