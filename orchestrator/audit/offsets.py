"""The sink's offsets in the audit store: the next offset to read of each partition.

They are stored in each batch's transaction (`store.py`), so records and offsets move
together. A partition's offset only moves on from the one its writer last stored: that is
what keeps two sinks that both think they own a partition (the same `--shard` given twice,
or a sink of an old layout still running beside the new ones) from both storing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg

from orchestrator.errors import OrchestratorError

__all__ = ["PartitionTakenError", "store_offsets", "stored_offsets"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]


class PartitionTakenError(OrchestratorError):
    """Another audit sink stored one of this sink's partitions: two sinks own it."""


async def stored_offsets(conn: Connection, topic: str) -> dict[int, int]:
    """The next offset stored for each partition of `topic` that has one."""
    cur = await conn.execute(
        "SELECT partition, next_offset FROM audit_offsets WHERE topic = %s", (topic,)
    )
    return {int(r[0]): int(r[1]) for r in await cur.fetchall()}


async def store_offsets(
    conn: Connection, topic: str, next_offsets: dict[int, int], known: Mapping[int, int]
) -> None:
    """Move each partition's stored offset to `next_offsets`, only from the one `known`.

    Last in the transaction, so the row lock is held for a moment only. Another writer of
    the same partition (a second sink given the same shard, or a sink of an old layout still
    running) has moved it: this batch rolls back whole (the caller's transaction ends with
    the error) and nothing it did is kept. A partition already at this batch's offset is no
    conflict: this batch's earlier attempt committed before its connection dropped.
    """
    partitions = sorted(next_offsets)
    cur = await conn.execute(
        "WITH u (p, o, k) AS"
        " (SELECT * FROM unnest(%(p)s::int[], %(o)s::bigint[], %(k)s::bigint[])),"
        " moved AS (UPDATE audit_offsets a SET next_offset = u.o FROM u"
        "  WHERE a.topic = %(t)s AND a.partition = u.p AND u.k IS NOT NULL"
        "  AND a.next_offset IN (u.k, u.o) RETURNING a.partition),"
        " added AS (INSERT INTO audit_offsets (topic, partition, next_offset)"
        "  SELECT %(t)s, p, o FROM u WHERE k IS NULL ORDER BY p"
        "  ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset"
        "  WHERE audit_offsets.next_offset = excluded.next_offset RETURNING partition)"
        " SELECT partition FROM moved UNION ALL SELECT partition FROM added",
        {
            "t": topic,
            "p": partitions,
            "o": [next_offsets[p] for p in partitions],
            "k": [known.get(p) for p in partitions],
        },
    )
    moved = {int(row[0]) for row in await cur.fetchall()}
    if len(moved) == len(partitions):
        return
    taken = min(set(partitions) - moved)
    stored = (await stored_offsets(conn, topic)).get(taken)
    if stored is None:
        raise PartitionTakenError(
            f"partition {taken} of {topic} has no stored offset any more while this sink had "
            f"it at {known[taken]} (was audit_offsets changed by hand?): this sink stored "
            "nothing of its batch and stops; started again, it reads the partition from the "
            "beginning and skips the records already stored"
        )
    raise PartitionTakenError(
        f"partition {taken} of {topic} was stored up to offset {stored} by another audit "
        f"sink while this one had it at {known.get(taken, 'none stored')}: two running sinks "
        "own it. Give each sink its own shard (--shard I/N or ORCHESTRATOR_AUDIT_SINK_SHARD, "
        "0/N to N-1/N with the same N) and stop every sink of an old layout before starting "
        "a new one; this sink stored nothing of its batch and stops (started again, it "
        "resumes from the stored offsets)"
    )
