"""Checkpoints: copies of the chain heads that moved since the last checkpoint, chained.

A chain's hashes show a row changed or removed from its middle, but not its newest rows
removed (the chain just ends earlier) nor a whole chain removed. The heads each checkpoint
saw show both. Checkpoints are chained by `digest` too, and `orchestrator audit verify`
prints the newest digest: kept outside the database, it pins every record before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from orchestrator.audit.chain import GENESIS, checkpoint_digest

__all__ = ["Checkpoint", "broken_checkpoint", "take_checkpoint"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One checkpoint: its number, time, how many chain heads it copied, and its digest."""

    checkpoint_id: int
    taken_at: datetime
    chains: int
    digest: bytes


async def take_checkpoint(conn: Connection) -> Checkpoint | None:
    """Copy every head that moved since the last checkpoint; None when none did."""
    async with conn.transaction():
        # One checkpoint at a time (the sink's timer and `audit checkpoint` may meet).
        await conn.execute("LOCK TABLE audit_checkpoints IN EXCLUSIVE MODE")
        cur = await conn.execute(
            "SELECT checkpoint_id, digest FROM audit_checkpoints"
            " ORDER BY checkpoint_id DESC LIMIT 1"
        )
        last = await cur.fetchone()
        checkpoint_id, prev = (last[0] + 1, bytes(last[1])) if last else (1, GENESIS)
        # The heads locked in chain order, as every sink's batch locks them (`store.py`):
        # with several sinks writing, locking them in any other order could deadlock.
        cur = await conn.execute(
            "UPDATE audit_chain_heads h SET dirty = false FROM (SELECT chain_id"
            " FROM audit_chain_heads WHERE dirty ORDER BY chain_id FOR UPDATE) d"
            " WHERE h.chain_id = d.chain_id RETURNING h.chain_id, h.seq, h.hash"
        )
        heads = [(r[0], int(r[1]), bytes(r[2])) for r in await cur.fetchall()]
        if not heads:
            return None
        digest = checkpoint_digest(prev, checkpoint_id, heads)
        cur = await conn.execute(
            "INSERT INTO audit_checkpoints (checkpoint_id, taken_at, chains, digest)"
            " VALUES (%s, now(), %s, %s) RETURNING taken_at",
            (checkpoint_id, len(heads), digest),
        )
        row = await cur.fetchone()
        async with (
            conn.cursor() as copy_cur,
            copy_cur.copy(
                "COPY audit_checkpoint_heads (checkpoint_id, chain_id, seq, hash) FROM STDIN"
            ) as copy,
        ):
            for chain_id, seq, head in heads:
                await copy.write_row((checkpoint_id, chain_id, seq, head))
    taken_at: datetime = row[0] if row else datetime.now(UTC)
    return Checkpoint(checkpoint_id, taken_at, len(heads), digest)


async def broken_checkpoint(conn: Connection) -> tuple[Checkpoint | None, str | None]:
    """(the newest checkpoint, what is wrong with the checkpoints' own chain, if anything)."""
    prev = GENESIS
    newest: Checkpoint | None = None
    cur = await conn.execute(
        "SELECT checkpoint_id, taken_at, chains, digest FROM audit_checkpoints"
        " ORDER BY checkpoint_id"
    )
    expected_id = 1
    for checkpoint_id, taken_at, chains, digest in await cur.fetchall():
        if checkpoint_id != expected_id:
            return newest, f"checkpoint {expected_id} is missing (deleted)"
        heads_cur = await conn.execute(
            "SELECT chain_id, seq, hash FROM audit_checkpoint_heads WHERE checkpoint_id = %s",
            (checkpoint_id,),
        )
        heads = [(r[0], int(r[1]), bytes(r[2])) for r in await heads_cur.fetchall()]
        if len(heads) != chains or checkpoint_digest(prev, checkpoint_id, heads) != digest:
            return newest, (
                f"checkpoint {checkpoint_id} was changed: its heads do not match its digest"
            )
        newest = Checkpoint(checkpoint_id, taken_at, chains, bytes(digest))
        prev = bytes(digest)
        expected_id += 1
    return newest, None
