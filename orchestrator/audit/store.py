"""Writing one batch of `interactions` records into the audit store, in one transaction.

`decode_batch` then `commit_batch` are the sink's commit path; its order matters and is
numbered here and in the code (`# Step N`):

1. Decode each value (`decode_batch`: no database, so the sink decodes the next batch while
   this one commits); one that is no interaction record goes to `audit_rejects`.
2. Claim the record ids (`INSERT ... ON CONFLICT (record_id) DO NOTHING`): a record the
   runtime produced twice, in this batch or any before, is dropped here.
3. Check that the month partitions the new records fall in exist; if not, roll back, create
   them in a transaction of their own (`months.py` says why) and start again.
4. Lock the heads of the chains the batch extends, and the customers' data keys (creating
   missing keys): an erasure waits for this batch, and this batch sees an erasure before it.
5. Seal personal fields, hash each row after its chain's head, in topic order; COPY the rows.
6. Move the chain heads; the projections (`projection.py`) fold the stored records.
7. Move each partition's stored offset, only from the offset this sink last stored (or saw
   stored when it started): if another sink stored that partition meanwhile, the batch
   rolls back whole and `PartitionTakenError` stops this sink (`offsets.py`).

`commit_batch` runs them in one transaction: records, heads, projections and offsets become
visible together or not at all, so a crash anywhere replays the batch from the stored offsets
and step 2 keeps it exactly once.

Several sinks (shards, `--shard I/N`) write at once, each its own partitions. What they
share is locked in one order by all of them, so they never deadlock: a chain's head and a
customer's key belong to one partition (every producer keys a record by its chain: the
customer, `journey:<id>` or `key:<id>`; a chain split over partitions by another producer
still chains, step 6), each projection updates its shared counter rows sorted by key, and
months are created outside any batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg

from orchestrator import jsonwire
from orchestrator.audit.chain import GENESIS, ChainRow, format_at, row_hash
from orchestrator.audit.months import MonthsMissingError, create_months, missing_months
from orchestrator.audit.offsets import store_offsets
from orchestrator.audit.personal import PersonalFields, new_key
from orchestrator.audit.projection import Projection, apply_projections
from orchestrator.contracts.base import ContractError, validate
from orchestrator.contracts.interactions import InteractionKind
from orchestrator.contracts.schemas import TOPIC_CONTRACTS

__all__ = [
    "BatchResult",
    "DecodedBatch",
    "SourceRecord",
    "commit_batch",
    "decode_batch",
    "derive",
]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

_CONTRACT = TOPIC_CONTRACTS["interactions"]
# Records decoded between two yields to the event loop (a few milliseconds of work).
_DECODE_SLICE = 250
# Rows per write to COPY: PostgreSQL parses one chunk while the next is formatted.
_COPY_CHUNK = 500

_COLUMNS = (
    "chain_id, record_id, kind, customer_id, direction, channel, journey, seq, at, body,"
    " prev_hash, hash, source_partition, source_offset"
)


# Inbound events (receipts and replies included) come in; sends go out; the rest is neither.
_DIRECTIONS = {InteractionKind.INBOUND.value: "inbound", InteractionKind.SEND.value: "outbound"}


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One value read from the topic, with where it was."""

    partition: int
    offset: int
    value: bytes | None


class _ChainStartedError(Exception):
    """Chains this batch found new at step 4 were started by another writer before step 6."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a batch did: rows stored, duplicates skipped, values rejected; `records` are the
    stored rows' data (unsealed), in topic order per partition, for the projections;
    `next_offsets` the offset now stored for each partition the batch read."""

    stored: int
    duplicates: int
    rejected: int
    records: tuple[dict[str, Any], ...] = ()
    next_offsets: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Decoded:
    source: SourceRecord
    data: dict[str, Any]
    at: datetime
    at_text: str  # `format_at(at)`, for the hash and for COPY


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """A batch after step 1: its values, the records by id, the rejects, the duplicates."""

    sources: Sequence[SourceRecord]
    records: dict[str, _Decoded]
    rejects: list[tuple[int, int, str, bytes | None]]  # partition, offset, reason, value
    duplicates: int


def derive(data: dict[str, Any]) -> tuple[str, str | None, str | None, str | None, str | None]:
    """(chain_id, customer_id, direction, channel, journey) of a decoded record."""
    customer = data.get("customer_id")
    kind = data.get("type")
    if customer:
        chain = str(customer)
    elif "key_id" in data:
        chain = f"key:{data['key_id']}"
    else:
        chain = f"journey:{data.get('journey')}"
    direction = _DIRECTIONS.get(str(kind))
    event = data.get("event")
    channel = data.get("channel") or (event.get("channel") if isinstance(event, dict) else None)
    return chain, customer, direction, channel, data.get("journey")


def _decode(source: SourceRecord) -> _Decoded | str:
    """The record's JSON data and time, or why it is not an interaction record."""
    if source.value is None:
        return "empty value (a tombstone)"
    # `read_record`'s two steps, to keep the parsed value: a record is stored as the contract
    # writes it, which is what our producers wrote, so the value as parsed mostly is that
    # already and needs no second parse.
    try:
        data: dict[str, Any] = jsonwire.loads(source.value)
    except jsonwire.JSONDecodeError as exc:
        return f"not a valid interactions record: not JSON ({exc})"
    try:
        encoded = validate(_CONTRACT, data, "interactions record").to_json()
    except ContractError as exc:
        return str(exc)
    if encoded != source.value:
        data = jsonwire.loads(encoded)
    at = datetime.fromisoformat(data["at"])
    if at.tzinfo is None:
        return f"record {data['record_id']}: `at` has no time zone"
    at = at.astimezone(UTC)
    return _Decoded(source, data, at, format_at(at))


async def decode_batch(batch: Sequence[SourceRecord]) -> DecodedBatch:
    """Step 1 of a batch, which needs no database: decode each value, keep the first
    occurrence of each record id.

    The sink runs it while the previous batch commits: it yields to the event loop every
    few hundred records, so that batch's round trips are answered as soon as they come back
    and PostgreSQL works on one batch while this process decodes the next.
    """
    records: dict[str, _Decoded] = {}
    rejects: list[tuple[int, int, str, bytes | None]] = []
    duplicates = 0
    for n, source in enumerate(batch, start=1):
        if n % _DECODE_SLICE == 0:
            await asyncio.sleep(0)
        result = _decode(source)
        if isinstance(result, str):
            rejects.append((source.partition, source.offset, result, source.value))
        elif result.data["record_id"] in records:
            duplicates += 1
        else:
            records[result.data["record_id"]] = result
    return DecodedBatch(batch, records, rejects, duplicates)


async def commit_batch(
    conn: Connection,
    topic: str,
    batch: DecodedBatch,
    personal: PersonalFields,
    offsets: Mapping[int, int],
    *,
    projections: Sequence[Projection] = (),
) -> BatchResult:
    """Store a decoded batch (steps 2 to 7) in one transaction, committed on return.

    `offsets`: the next offset stored for each partition as this writer last knew it (from
    `offsets.stored_offsets` at start, then each result's `next_offsets`); a partition not in it had
    none stored.
    """
    while True:
        try:
            async with conn.transaction():
                return await _write_batch(
                    conn, topic, batch, personal, offsets, projections=projections
                )
        except MonthsMissingError as missing:
            # Step 3: rolled back; create the months holding no lock, then write it again.
            await create_months(conn, missing.months)
        except _ChainStartedError:
            continue  # step 6: rolled back; the chain's head is there to lock this time


async def _write_batch(
    conn: Connection,
    topic: str,
    batch: DecodedBatch,
    personal: PersonalFields,
    offsets: Mapping[int, int],
    *,
    projections: Sequence[Projection],
) -> BatchResult:
    decoded, rejects, duplicates = batch.records, batch.rejects, batch.duplicates
    # The lock COPY would take anyway, taken first: a retention run (`retention.py`) then
    # either waits for this batch or has dropped its months before step 3 looks for them.
    await conn.execute("LOCK TABLE audit_records IN ROW EXCLUSIVE MODE")
    if rejects:
        async with conn.cursor() as cur:
            await cur.executemany(
                'INSERT INTO audit_rejects (topic, partition, "offset", reason, value)'
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(topic, *reject) for reject in rejects],
            )
    # Step 2: claim the ids; those already stored by an earlier batch come back missing.
    fresh: list[_Decoded] = []
    if decoded:
        cur = await conn.execute(
            "INSERT INTO audit_record_ids (record_id, at)"
            " SELECT * FROM unnest(%s::text[], %s::timestamptz[])"
            " ON CONFLICT (record_id) DO NOTHING RETURNING record_id",
            (list(decoded), [d.at for d in decoded.values()]),
        )
        claimed = {row[0] for row in await cur.fetchall()}
        duplicates += len(decoded) - len(claimed)
        # In topic order per partition: the order chains are hashed in (a chain lives in one
        # partition, keyed by it), and the order projections see.
        fresh = sorted(
            (d for record_id, d in decoded.items() if record_id in claimed),
            key=lambda d: (d.source.partition, d.source.offset),
        )
    if fresh:
        # Step 3
        missing = await missing_months(conn, {d.at for d in fresh})
        if missing:
            raise MonthsMissingError(missing)
        await _store_rows(conn, fresh, personal)
    records = tuple(d.data for d in fresh)
    await apply_projections(conn, projections, records)
    # Step 7: the batch is consumed whatever became of each value in it.
    next_offsets: dict[int, int] = {}
    for source in batch.sources:
        next_offsets[source.partition] = max(
            next_offsets.get(source.partition, 0), source.offset + 1
        )
    await store_offsets(conn, topic, next_offsets, offsets)
    return BatchResult(len(fresh), duplicates, len(rejects), records, next_offsets)


async def _store_rows(conn: Connection, fresh: list[_Decoded], personal: PersonalFields) -> None:
    rows = [(d, *derive(d.data)) for d in fresh]
    chains = sorted({row[1] for row in rows})
    customers = sorted({row[2] for row in rows if row[2]})
    # Step 4: lock heads and keys in a fixed order (sorted), so two writers never deadlock.
    cur = await conn.execute(
        "SELECT chain_id, seq, hash FROM audit_chain_heads WHERE chain_id = ANY(%s)"
        " ORDER BY chain_id FOR UPDATE",
        (chains,),
    )
    heads: dict[str, tuple[int, bytes]] = {r[0]: (r[1], bytes(r[2])) for r in await cur.fetchall()}
    new_chains = {chain for chain in chains if chain not in heads}
    keys = await _customer_keys(conn, customers)
    # One cipher per customer per batch: making it costs more than sealing a record.
    ciphers = {customer: personal.cipher(key) for customer, key in keys.items()}
    # Step 5, in the order of `fresh`.
    lines: list[str] = []
    async with (
        conn.cursor() as cur,
        cur.copy(f"COPY audit_records ({_COLUMNS}) FROM STDIN") as copy,
    ):
        for decoded, chain, customer, direction, channel, journey in rows:
            data = decoded.data
            record_id = data["record_id"]
            body = personal.seal(data, ciphers[customer], record_id) if customer else data
            seq, prev = heads.get(chain, (0, GENESIS))
            row = ChainRow(
                chain, seq + 1, record_id, decoded.at, str(data["type"]), customer,
                direction, channel, journey, jsonwire.dumps_canonical(body).decode(),
            )  # fmt: skip
            digest = row_hash(prev, row, decoded.at_text)
            heads[chain] = (row.seq, digest)
            lines.append(_copy_line(row, decoded.at_text, prev, digest, decoded.source))
            if len(lines) == _COPY_CHUNK:
                await copy.write("".join(lines).encode())
                lines.clear()
        await copy.write("".join(lines).encode())
    # Step 6. A chain new at step 4 that has a head now was started meanwhile by another
    # sink (only if a producer put one chain's records in two partitions): roll back and
    # write the batch again, after that head (`commit_batch`).
    cur = await conn.execute(
        "INSERT INTO audit_chain_heads (chain_id, seq, hash, dirty)"
        " SELECT *, true FROM unnest(%s::text[], %s::bigint[], %s::bytea[])"
        " ON CONFLICT (chain_id) DO UPDATE"
        " SET seq = excluded.seq, hash = excluded.hash, dirty = true"
        " RETURNING chain_id, xmax <> 0",
        (chains, [heads[c][0] for c in chains], [heads[c][1] for c in chains]),
    )
    raced = sorted(
        chain for chain, existed in await cur.fetchall() if existed and chain in new_chains
    )
    if raced:
        raise _ChainStartedError(raced)


def _copy_line(
    row: ChainRow, at_text: str, prev: bytes, digest: bytes, source: SourceRecord
) -> str:
    """One row in COPY's text format, columns in `_COLUMNS` order (psycopg's `write_row`
    costs several times as much per row)."""
    texts = (
        row.chain_id,
        row.record_id,
        row.kind,
        row.customer_id,
        row.direction,
        row.channel,
        row.journey,
    )
    probe = "".join([text for text in texts if text is not None])
    if "\\" in probe or "\t" in probe or "\n" in probe or "\r" in probe:
        head = "\t".join([_copy_text(text) for text in texts])  # rare: escape each
    else:
        head = "\t".join([text if text is not None else "\\N" for text in texts])
    # orjson escapes every control character, so a body holds no tab or newline.
    body = row.body.replace("\\", "\\\\")
    return (
        f"{head}\t{row.seq}\t{at_text}\t{body}\t\\\\x{prev.hex()}\t\\\\x{digest.hex()}\t"
        f"{source.partition}\t{source.offset}\n"
    )


def _copy_text(value: str | None) -> str:
    """A text column in COPY's text format: NULL as \\N, its special characters escaped."""
    if value is None:
        return "\\N"
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


async def _customer_keys(conn: Connection, customers: list[str]) -> dict[str, bytes | None]:
    """Each customer's data key (None once erased), creating the missing ones, locked shared."""
    if not customers:
        return {}
    select = (
        "SELECT customer_id, key FROM audit_customer_keys WHERE customer_id = ANY(%s)"
        " ORDER BY customer_id FOR SHARE"
    )
    cur = await conn.execute(select, (customers,))
    keys = {r[0]: (bytes(r[1]) if r[1] is not None else None) for r in await cur.fetchall()}
    missing = [customer for customer in customers if customer not in keys]
    if missing:
        await conn.execute(
            "INSERT INTO audit_customer_keys (customer_id, key)"
            " SELECT * FROM unnest(%s::text[], %s::bytea[]) ON CONFLICT (customer_id) DO NOTHING",
            (missing, [new_key() for _ in missing]),
        )
        cur = await conn.execute(select, (missing,))
        keys.update({r[0]: (bytes(r[1]) if r[1] else None) for r in await cur.fetchall()})
    return keys
