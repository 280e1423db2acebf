"""Projections: tables kept current from the audit store's records, exactly once.

A projection is handed each batch of records the sink has just stored, on the sink's
connection, inside the transaction that stores them and their offsets. So a projection's
tables move with the records: a crash rolls both back and the batch is replayed; a record
redelivered by Kafka was dropped by the sink (by `record_id`) before any projection saw it.

The audit package only defines the hook; the packages above it (`measure/`) implement it and
the `audit-sink` command wires them in, so the arrows keep pointing down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import psycopg

__all__ = ["Projection", "StoredRecord", "apply_projections"]

StoredRecord = Mapping[str, Any]
"""One stored interaction record as its JSON data (personal fields not sealed)."""


class Projection(Protocol):
    """Keeps derived tables current from newly stored interaction records."""

    @property
    def name(self) -> str:
        """A short name for logs and errors."""
        ...

    async def apply(
        self, conn: psycopg.AsyncConnection[tuple[Any, ...]], records: Sequence[StoredRecord]
    ) -> None:
        """Fold `records` into the projection's tables.

        Called inside the sink's open transaction (do not commit or roll back), with only the
        records this batch stored for the first time, in topic order per partition (so one
        customer's records, and hence one journey instance's, arrive in order). Raising rolls
        the whole batch back; the sink retries it. Several sinks (shards) call it at once:
        rows shared across customers are incremented in place and written sorted by key,
        so that concurrent batches lock them in one order.
        """
        ...


async def apply_projections(
    conn: psycopg.AsyncConnection[tuple[Any, ...]],
    projections: Sequence[Projection],
    records: Sequence[StoredRecord],
) -> None:
    """Run every projection over `records`, in order, in the caller's transaction."""
    if not records:
        return
    for projection in projections:
        await projection.apply(conn, records)
