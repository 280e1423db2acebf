"""The per-chain hash: SHA-256 over the previous hash and a canonical encoding of a stored row.

A chain is one customer's records (or one journey's, one API key's operator records) in the
order the sink stored them: `seq` 1, 2, 3... Each row's hash covers the previous row's hash,
its position, its columns in a fixed format and the exact JSON text of its body (personal
fields already encrypted), so changing, removing or reordering a row breaks every hash after
it, and erasing a customer's key (which leaves the ciphertext alone) breaks nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator import jsonwire

__all__ = ["GENESIS", "ChainRow", "checkpoint_digest", "format_at", "row_hash"]

GENESIS = bytes(32)
"""The `prev_hash` of each chain's first row."""


@dataclass(frozen=True, slots=True)
class ChainRow:
    """The columns of `audit_records` a row's hash covers."""

    chain_id: str
    seq: int
    record_id: str
    at: datetime
    kind: str
    customer_id: str | None
    direction: str | None
    channel: str | None
    journey: str | None
    body: str


def format_at(at: datetime) -> str:
    """A fixed text form of an instant: UTC, always microseconds (`2026-05-01T09:30:00.000000Z`)."""
    # isoformat is C and ~4x faster than strftime; same text for every year from 1000 on.
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def row_hash(prev_hash: bytes, row: ChainRow, at_text: str | None = None) -> bytes:
    """SHA-256 of `prev_hash`, the row's columns as canonical JSON, a newline and its body
    (`at_text`: `format_at(row.at)` if the caller has it already)."""
    # The keys in sorted order already, so plain `dumps` gives the canonical bytes (this
    # runs once per stored record; a test compares it with `dumps_canonical`).
    header = jsonwire.dumps(
        {
            "at": at_text or format_at(row.at),
            "chain_id": row.chain_id,
            "channel": row.channel,
            "customer_id": row.customer_id,
            "direction": row.direction,
            "journey": row.journey,
            "kind": row.kind,
            "record_id": row.record_id,
            "seq": row.seq,
        }
    )
    digest = hashlib.sha256(prev_hash)
    digest.update(header)
    digest.update(b"\n")
    digest.update(row.body.encode())
    return digest.digest()


def checkpoint_digest(
    prev_digest: bytes, checkpoint_id: int, heads: list[tuple[str, int, bytes]]
) -> bytes:
    """SHA-256 over the previous checkpoint's digest and this one's heads, sorted by chain."""
    digest = hashlib.sha256(prev_digest)
    digest.update(str(checkpoint_id).encode())
    for chain_id, seq, head in sorted(heads):
        digest.update(jsonwire.dumps_canonical([chain_id, seq, head.hex()]))
    return digest.digest()
