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
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
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

# The body as text: it is parsed with orjson (psycopg's json loader is the standard library's).
_COLUMNS = (
    "at, chain_id, seq, record_id, kind, customer_id, direction, channel, journey, body::text"
)
_KEY_COLUMN = (
    ", (SELECT k.key FROM audit_customer_keys k WHERE k.customer_id = r.customer_id) AS key"
)
# Rows per chunk a stream reads from the connection.
_STREAM_CHUNK = 1000
# What every sealed value starts with (`personal.py`), as it appears in a record's JSON text.
_SEALED = '"enc:v1:'


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


def select_statement(
    flt: AuditFilter,
    after: tuple[datetime, str, int] | None,
    newest_first: bool,
    limit: int | None,
    *,
    with_key: bool = False,
) -> tuple[sql.Composed, list[object]]:
    """The SELECT a query runs and its parameters (also what a test EXPLAINs); `with_key`
    adds each row's customer key as an eleventh column."""
    where, params = _where(flt, after, newest_first)
    order = sql.SQL("DESC" if newest_first else "ASC")
    columns = _COLUMNS + (_KEY_COLUMN if with_key else "")
    statement = (
        sql.SQL(f"SELECT {columns} FROM audit_records r")  # noqa: S608 - fixed column list
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


class _Ciphers:
    """Customers' ciphers, made once per key (making one costs more than opening a record)."""

    def __init__(self, personal: PersonalFields) -> None:
        self.personal = personal
        self.by_customer: dict[str, AESGCM | None] = {}
        self._by_key: dict[bytes, AESGCM] = {}

    def of_key(self, key: bytes | None) -> AESGCM | None:
        """The cipher of `key` (None: erased)."""
        if key is None:
            return None
        cipher = self._by_key.get(key)
        if cipher is None:
            # Bounded: a stream over millions of customers must not keep every key.
            if len(self._by_key) > 10_000:
                self._by_key.clear()
            cipher = self._by_key[key] = AESGCM(key)
        return cipher

    async def load(self, conn: Connection, customers: Iterable[str]) -> None:
        """Fetch the ciphers of `customers` not fetched yet, in one query."""
        wanted = sorted({c for c in customers if c not in self.by_customer})
        if not wanted:
            return
        cur = await conn.execute(
            "SELECT customer_id, key FROM audit_customer_keys WHERE customer_id = ANY(%s)",
            (wanted,),
        )
        found = {r[0]: (bytes(r[1]) if r[1] is not None else None) for r in await cur.fetchall()}
        self.by_customer.update({c: self.of_key(found.get(c)) for c in wanted})

    def record(self, row: Sequence[Any], cipher: AESGCM | None) -> StoredRecord:
        """A stored row (`_COLUMNS`, the body as JSON text) with its personal fields opened."""
        at, chain_id, seq, record_id, kind, customer_id, direction, channel, journey, text = row[
            :10
        ]
        body = jsonwire.loads(text)
        # Nothing sealed (an operator's record, say): no walk through the record.
        if customer_id is not None and _SEALED in text:
            self.personal.open_in_place(body, cipher, record_id)
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
    ciphers = _Ciphers(personal)
    await ciphers.load(conn, (r[5] for r in rows[:limit] if r[5] is not None))
    records = [ciphers.record(r, ciphers.by_customer.get(r[5])) for r in rows[:limit]]
    more = len(rows) > limit
    return Page(records, _encode_cursor(records[-1]) if more and records else None)


async def stream_records(
    conn: Connection, flt: AuditFilter, personal: PersonalFields, *, newest_first: bool = False
) -> AsyncIterator[StoredRecord]:
    """Every matching record, streamed (memory stays flat).

    One query whose rows arrive in chunks (libpq's chunked mode): PostgreSQL sends the next
    rows while this process writes the last ones, with no round trip per chunk as a
    server-side cursor's FETCH has, and the socket's buffer holds it back while the reader
    is slow. Each row carries its customer's key (a subquery per row), since the connection
    can run no other query meanwhile. Leaving the loop early cancels the query.
    """
    statement, params = select_statement(flt, None, newest_first, None, with_key=True)
    ciphers = _Ciphers(personal)
    async with conn.cursor() as cur:
        async for row in cur.stream(statement, params, size=_STREAM_CHUNK):
            yield ciphers.record(row, ciphers.of_key(row[10]))


async def stream_by_customer(
    conn: Connection,
    kinds: tuple[str, ...],
    personal: PersonalFields,
    customers: Sequence[str] | None = None,
) -> AsyncIterator[list[StoredRecord]]:
    """Each customer's records of `kinds`, one customer at a time, oldest first; only
    those of `customers` when given.

    One pass over the `(customer_id, at, chain_id, seq)` index, streamed as `stream_records`
    is: memory holds one customer's records.
    """
    only = " AND customer_id = ANY(%s)" if customers is not None else ""
    params: tuple[object, ...] = (list(kinds),)
    if customers is not None:
        params += (list(customers),)
    statement = (
        f"SELECT {_COLUMNS}{_KEY_COLUMN} FROM audit_records r"  # noqa: S608 - fixed columns
        f" WHERE customer_id IS NOT NULL AND kind = ANY(%s){only}"
        " ORDER BY customer_id, at, chain_id, seq"
    )
    ciphers = _Ciphers(personal)
    current: list[StoredRecord] = []
    async with conn.cursor() as cur:
        async for row in cur.stream(statement, params, size=_STREAM_CHUNK):
            record = ciphers.record(row, ciphers.of_key(row[10]))
            if current and current[0].customer_id != record.customer_id:
                yield current
                current = []
            current.append(record)
    if current:
        yield current
