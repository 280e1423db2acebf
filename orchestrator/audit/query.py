"""Reading the audit store: filtered pages with cursors, a customer's timeline, streaming.

Shared by `orchestrator audit query|timeline|export` and, later, the API's audit routes.
Records come back in a total order, oldest or newest first: (`at`, `chain_id`, `seq`), or,
for one customer, the order the records were stored in (`seq`: the order of the customer's
partition, which is the order things happened to them, whatever each record's `at` says).
A cursor is the position of a page's last record, so pages never skip or repeat a record
whatever is stored meanwhile. Personal fields are decrypted with the customer's key, and
read as `[erased]` once the customer is erased.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from orchestrator import jsonwire
from orchestrator.audit.chain import format_at
from orchestrator.audit.personal import PersonalFields
from orchestrator.errors import OrchestratorError

__all__ = [
    "TIMELINE_KINDS",
    "AuditFilter",
    "AuditQueryError",
    "Page",
    "StoredRecord",
    "query_page",
    "select_statement",
    "stream_by_customer",
    "stream_records",
]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

TIMELINE_KINDS = ("inbound", "send")
"""A timeline's kinds: every event that came in (replies and receipts too), every message sent."""

_COLUMNS = "at, chain_id, seq, record_id, kind, customer_id, direction, channel, journey, body"


class AuditQueryError(OrchestratorError):
    """A query's arguments are unusable (a bad cursor); the message says which and why."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which records: each field set narrows the result (`kinds`, `directions` and
    `events`, the names of inbound records' events: any of)."""

    customer: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    channel: str | None = None
    journey: str | None = None
    kinds: tuple[str, ...] = ()
    directions: tuple[str, ...] = ()
    events: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One stored record, personal fields decrypted (or `[erased]`)."""

    at: datetime
    chain_id: str
    seq: int
    record_id: str
    kind: str
    customer_id: str | None
    direction: str | None
    channel: str | None
    journey: str | None
    record: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, `at` in the store's fixed format."""
        return {
            "at": format_at(self.at),
            "record_id": self.record_id,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "direction": self.direction,
            "channel": self.channel,
            "journey": self.journey,
            "chain_id": self.chain_id,
            "seq": self.seq,
            "record": self.record,
        }


@dataclass(frozen=True, slots=True)
class Page:
    """One page of records, and the cursor of the next (None: this was the last)."""

    records: list[StoredRecord]
    next_cursor: str | None


def _encode_cursor(record: StoredRecord) -> str:
    position = jsonwire.dumps([format_at(record.at), record.chain_id, record.seq])
    return base64.urlsafe_b64encode(position).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str, int]:
    try:
        at, chain_id, seq = jsonwire.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(at), str(chain_id), int(seq)
    except (ValueError, TypeError) as exc:
        raise AuditQueryError(
            f"cursor {cursor!r} is not one this store gave out: pass the `next_cursor` of the "
            "previous page unchanged, or leave it out to start at the first page"
        ) from exc


def _order_key(flt: AuditFilter) -> tuple[str, ...]:
    """One customer's records in their chain's order; others by time, then chain position."""
    return ("seq",) if flt.customer is not None else ("at", "chain_id", "seq")


def _where(
    flt: AuditFilter, after: tuple[datetime, str, int] | None, newest_first: bool
) -> tuple[sql.Composable, list[object]]:
    parts: list[sql.Composable] = []
    params: list[object] = []
    for column, value in (
        ("customer_id", flt.customer), ("channel", flt.channel), ("journey", flt.journey),
    ):  # fmt: skip
        if value is not None:
            parts.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if flt.since is not None:
        parts.append(sql.SQL("at >= %s"))
        params.append(flt.since)
    if flt.until is not None:
        parts.append(sql.SQL("at < %s"))
        params.append(flt.until)
    for column, values in (("kind", flt.kinds), ("direction", flt.directions)):
        if values:
            parts.append(sql.SQL("{} = ANY(%s)").format(sql.Identifier(column)))
            params.append(list(values))
    if flt.events:
        # Indexed by migration 0004; the event's name is never a personal field.
        parts.append(sql.SQL("(body->'event'->>'name') = ANY(%s)"))
        params.append(list(flt.events))
    if after is not None:
        key = _order_key(flt)
        parts.append(
            sql.SQL("({}) {} ({})").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in key),
                sql.SQL("<" if newest_first else ">"),
                sql.SQL(", ").join(sql.Placeholder() for _ in key),
            )
        )
        position = dict(zip(("at", "chain_id", "seq"), after, strict=True))
        params.extend(position[c] for c in key)
    if not parts:
        return sql.SQL(""), params
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(parts), params


def select_statement(flt: AuditFilter, after: tuple[datetime, str, int] | None, newest_first: bool,
               limit: int | None) -> tuple[sql.Composed, list[object]]:  # fmt: skip
    """The SELECT a query runs and its parameters (also what a test EXPLAINs)."""
    where, params = _where(flt, after, newest_first)
    order = sql.SQL("DESC" if newest_first else "ASC")
    statement = (
        sql.SQL(f"SELECT {_COLUMNS} FROM audit_records")  # noqa: S608 - fixed column list
        + where
        + sql.SQL(" ORDER BY ")
        + sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), order) for c in _order_key(flt)
        )
    )
    if limit is not None:
        statement += sql.SQL(" LIMIT %s")
        params.append(limit)
    return statement, params


class _Keys:
    """Customers' data keys, fetched on first use (a page or stream touches few customers)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.keys: dict[str, bytes | None] = {}

    async def load(self, customers: Iterable[str]) -> None:
        wanted = sorted({c for c in customers if c not in self.keys})
        if not wanted:
            return
        cur = await self.conn.execute(
            "SELECT customer_id, key FROM audit_customer_keys WHERE customer_id = ANY(%s)",
            (wanted,),
        )
        found = {r[0]: (bytes(r[1]) if r[1] is not None else None) for r in await cur.fetchall()}
        # Bounded: a stream over millions of customers must not keep every key.
        if len(self.keys) > 10_000:
            self.keys.clear()
        self.keys.update({c: found.get(c) for c in wanted})


def _record(row: tuple[Any, ...], personal: PersonalFields, keys: _Keys) -> StoredRecord:
    at, chain_id, seq, record_id, kind, customer_id, direction, channel, journey, body = row
    if customer_id is not None:
        body = personal.open(body, keys.keys.get(customer_id), record_id)
    return StoredRecord(
        at, chain_id, int(seq), record_id, kind, customer_id, direction, channel, journey, body
    )


async def query_page(
    conn: Connection,
    flt: AuditFilter,
    personal: PersonalFields,
    *,
    limit: int = 100,
    cursor: str | None = None,
    newest_first: bool = False,
) -> Page:
    """Up to `limit` records matching `flt` after `cursor`, and the next page's cursor."""
    after = _decode_cursor(cursor) if cursor else None
    statement, params = select_statement(flt, after, newest_first, limit + 1)
    cur = await conn.execute(statement, params)
    rows = await cur.fetchall()
    keys = _Keys(conn)
    await keys.load(r[5] for r in rows[:limit] if r[5] is not None)
    records = [_record(r, personal, keys) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(records, _encode_cursor(records[-1]) if more and records else None)


async def stream_records(
    conn: Connection, flt: AuditFilter, personal: PersonalFields, *, newest_first: bool = False
) -> AsyncIterator[StoredRecord]:
    """Every record matching `flt`, read through a server-side cursor (memory stays flat).

    Holds a transaction open on `conn` while it is iterated.
    """
    statement, params = select_statement(flt, None, newest_first, None)
    keys = _Keys(conn)
    async with conn.transaction(), conn.cursor(name="audit_export") as cur:
        cur.itersize = 2000
        await cur.execute(statement, params)
        while rows := await cur.fetchmany(2000):
            await keys.load(r[5] for r in rows if r[5] is not None)
            for row in rows:
                yield _record(row, personal, keys)


async def stream_by_customer(
    conn: Connection, kinds: tuple[str, ...], personal: PersonalFields
) -> AsyncIterator[list[StoredRecord]]:
    """Each customer's records of `kinds`, one customer at a time, oldest first.

    One pass over the `(customer_id, at, chain_id, seq)` index through a server-side cursor:
    memory holds one customer's records. Holds a transaction open on `conn` while iterated.
    """
    statement = (
        f"SELECT {_COLUMNS} FROM audit_records"  # noqa: S608 - fixed column list
        " WHERE customer_id IS NOT NULL AND kind = ANY(%s)"
        " ORDER BY customer_id, at, chain_id, seq"
    )
    keys = _Keys(conn)
    current: list[StoredRecord] = []
    async with conn.transaction(), conn.cursor(name="audit_by_customer") as cur:
        cur.itersize = 2000
        await cur.execute(statement, (list(kinds),))
        while rows := await cur.fetchmany(2000):
            await keys.load(r[5] for r in rows)
            for row in rows:
                record = _record(row, personal, keys)
                if current and current[0].customer_id != record.customer_id:
                    yield current
                    current = []
                current.append(record)
    if current:
        yield current
