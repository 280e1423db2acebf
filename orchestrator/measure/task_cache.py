"""Task figures kept per customer, so that a call reads only the customers who changed.

The pure computation (`measure/tasks.py`) is per customer: what one customer contributes to
a task (`CustomerSpans`) depends on their own records only. Each contribution is kept in
`measure_task_customers` (migration 0005) under the digest of the task's definition, with
what the store held when it was computed: the customer's chain head `seq`, the retention
run that last dropped records of their chain (`audit_retention_markers`), and whether they
were erased. A call (`measure_tasks`):

1. finds the customers whose head, marker or erasure differ from their row (or who have
   none), then reads only their records (`task_reader.py`);
2. stores their contributions, each row with the head, marker and erasure read in step 1,
   before the records: if anything changed meanwhile, the next call sees the difference
   and reads them again. Both steps are one transaction holding `REFRESH_LOCK`;
3. adds up every customer's kept contribution, in `customer_id` order: the order of the one
   pass, so the figures are those of `task_reader.full_pass` to the last bit.

A task file whose definition changes has a new digest: its first call computes it for every
customer, and drops the rows of the task's older definitions. `RULES` is part of every
digest: raise it when `measure/tasks.py` changes what it computes.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from orchestrator import jsonwire
from orchestrator.audit.personal import PersonalFields
from orchestrator.journey.tasks import CompiledTask, EventMatch
from orchestrator.measure.task_reader import customers_spans
from orchestrator.measure.tasks import CustomerSpans, GapPlace, Span, TaskFigures, TaskMeasure

__all__ = [
    "REFRESH_LOCK",
    "RULES",
    "Refresh",
    "clear_task_cache",
    "decode_spans",
    "encode_spans",
    "kept_figures",
    "measure_tasks",
    "refresh",
    "task_digest",
]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

RULES = 1
"""The version of the rules in `measure/tasks.py`: part of every digest."""

# Above this share of the customers stale, one pass over every record beats a lookup per
# customer (the first call, a new task file).
_FULL_PASS_SHARE = 0.25
# Customers per lookup query when few are stale, and rows per write.
_CHUNK = 5000

REFRESH_LOCK = 0x7461736B73
"""The advisory lock a refresh holds: one at a time ("tasks" in ASCII)."""
# The store as it is now, per customer: head seq, retention run of the marker, erased.
_STORE = (
    "SELECT h.chain_id, h.seq, coalesce(m.retention_id, 0), k.erased_at IS NOT NULL"
    " FROM audit_chain_heads h"
    # Every customer has a key row from their first record on: operators' chains have none.
    " JOIN audit_customer_keys k ON k.customer_id = h.chain_id"
    " LEFT JOIN audit_retention_markers m ON m.chain_id = h.chain_id"
)


@dataclass(frozen=True, slots=True)
class Refresh:
    """What a refresh read: customers stale (read again) and their records; `customers`
    is every customer in the store."""

    customers: int
    stale: int
    records: int


def _match(spec: EventMatch) -> list[str | None]:
    return [spec.name, spec.when.source if spec.when is not None else None]


def task_digest(task: CompiledTask) -> str:
    """The digest of what `task`'s spans depend on (not its description), and of `RULES`."""
    definition = [
        RULES, task.id, _match(task.starts), _match(task.ends), _match(task.process_starts),
        _match(task.process_ends), task.match, task.within,
    ]  # fmt: skip
    return hashlib.sha256(jsonwire.dumps_canonical(definition)).hexdigest()


def encode_spans(found: CustomerSpans) -> bytes | None:
    """A customer's contribution as stored (None: no span). Floats survive exactly."""
    if not found.spans:
        return None
    return jsonwire.dumps(
        [
            [
                span.start,
                span.end,
                list(span.process) if span.process is not None else None,
                [[p.party, p.journey, p.step, p.channel, seconds] for p, seconds in places],
            ]
            for span, places in found.spans
        ]
    )


def decode_spans(
    stored: bytes, places: dict[tuple[str, ...], GapPlace] | None = None
) -> CustomerSpans:
    """`encode_spans`'s bytes as they were; `places` keeps each place made once (a store
    has few, and making one costs more than reading it)."""
    places = {} if places is None else places
    spans = []
    for start, end, process, gaps in jsonwire.loads(stored):
        found = []
        for party, journey, step, channel, seconds in gaps:
            key = (party, journey, step, channel)
            place = places.get(key)
            if place is None:
                place = places[key] = GapPlace(party, journey, step, channel)
            found.append((place, seconds))
        span = Span(start, end, (process[0], process[1]) if process is not None else None)
        spans.append((span, tuple(found)))
    return CustomerSpans(tuple(spans))


async def _stale(conn: Connection, digest: str) -> dict[str, tuple[int, int, bool]]:
    cur = await conn.execute(
        _STORE + " LEFT JOIN measure_task_customers c"
        " ON c.digest = %s AND c.customer_id = h.chain_id"
        " WHERE c.customer_id IS NULL OR c.seq <> h.seq"
        " OR c.retention_id <> coalesce(m.retention_id, 0)"
        " OR c.erased <> (k.erased_at IS NOT NULL)",
        (digest,),
    )
    return {r[0]: (int(r[1]), int(r[2]), bool(r[3])) for r in await cur.fetchall()}


async def refresh(
    conn: Connection, tasks: Sequence[CompiledTask], personal: PersonalFields
) -> Refresh:
    """Compute again, and keep, the contributions of the customers whose records changed
    since theirs were kept (every customer, for a task not computed before)."""
    digests = [task_digest(task) for task in tasks]
    measure = TaskMeasure(tasks)
    # Encoded at once: bytes, which the garbage collector does not walk again and again.
    computed: dict[str, list[bytes | None]] = {}
    records = 0
    async with conn.transaction():
        # One refresh at a time: dashboards opened together while the first call runs wait
        # for it and find little to read, rather than each reading the whole store. Released
        # with the transaction, whatever becomes of the call.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REFRESH_LOCK,))
        # The store's state first, then the records: whatever is stored, retained or erased
        # in between makes the kept row differ at the next call, which reads them again.
        cur = await conn.execute(f"SELECT count(*) FROM ({_STORE}) s")  # noqa: S608 - fixed
        customers = int((await cur.fetchone() or (0,))[0])
        stale: dict[str, tuple[int, int, bool]] = {}
        for digest in digests:
            stale.update(await _stale(conn, digest))
        wanted = sorted(stale)
        lookups: list[list[str] | None] = (
            [None]
            if len(wanted) > customers * _FULL_PASS_SHARE
            else [wanted[i : i + _CHUNK] for i in range(0, len(wanted), _CHUNK)]
        )
        for chunk in lookups:
            async for customer, read, found in customers_spans(conn, measure, personal, chunk):
                if customer in stale:
                    records += read
                    computed[customer] = [encode_spans(f) for f in found]
        empty: list[bytes | None] = [None for _ in tasks]
        for index, (task, digest) in enumerate(zip(tasks, digests, strict=True)):
            await _define(conn, task, digest)
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                await _keep(conn, digest, chunk, stale,
                            [computed.get(c, empty)[index] for c in chunk])  # fmt: skip
    return Refresh(customers, len(wanted), records)


async def _define(conn: Connection, task: CompiledTask, digest: str) -> None:
    """Record `digest` as `task`'s definition; a new one drops the task's older ones."""
    cur = await conn.execute(
        "INSERT INTO measure_task_definitions (digest, task) VALUES (%s, %s)"
        " ON CONFLICT (digest) DO NOTHING RETURNING digest",
        (digest, task.id),
    )
    if await cur.fetchone() is not None:
        # Their customers' rows go with them (ON DELETE CASCADE).
        await conn.execute(
            "DELETE FROM measure_task_definitions WHERE task = %s AND digest <> %s",
            (task.id, digest),
        )


async def _keep(
    conn: Connection,
    digest: str,
    customers: list[str],
    store: dict[str, tuple[int, int, bool]],
    found: list[bytes | None],
) -> None:
    await conn.execute(
        "INSERT INTO measure_task_customers"
        " (digest, customer_id, seq, retention_id, erased, spans)"
        " SELECT %s, * FROM unnest(%s::text[], %s::bigint[], %s::bigint[], %s::boolean[],"
        "  %s::bytea[])"
        " ON CONFLICT (digest, customer_id) DO UPDATE SET seq = excluded.seq,"
        "  retention_id = excluded.retention_id, erased = excluded.erased,"
        "  spans = excluded.spans",
        (
            digest,
            customers,
            [store[c][0] for c in customers],
            [store[c][1] for c in customers],
            [store[c][2] for c in customers],
            found,
        ),
    )


async def kept_figures(conn: Connection, tasks: Sequence[CompiledTask]) -> list[TaskFigures]:
    """Every task's figures from the kept contributions, in the one pass's customer order."""
    measure = TaskMeasure(tasks)
    places: dict[tuple[str, ...], GapPlace] = {}
    for index, task in enumerate(tasks):
        chunk: list[bytes] = []
        async with conn.cursor() as cur:
            async for (stored,) in cur.stream(
                "SELECT spans FROM measure_task_customers WHERE digest = %s"
                " AND spans IS NOT NULL ORDER BY customer_id",
                (task_digest(task),),
                size=_CHUNK,
            ):
                chunk.append(stored)
                if len(chunk) == _CHUNK:
                    _add(measure, index, chunk, places)
                    chunk = []
        _add(measure, index, chunk, places)
    return measure.figures()


def _add(
    measure: TaskMeasure, index: int, chunk: list[bytes], places: dict[tuple[str, ...], GapPlace]
) -> None:
    """Count a chunk of kept contributions. Without the cyclic garbage collector: the
    lists and tuples made here form no cycles, and it would walk them over and over (4/5
    of the time, measured with `bench/tasks.py`); no other task runs meanwhile (no await)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        for stored in chunk:
            measure.add_spans(index, decode_spans(bytes(stored), places))
    finally:
        if enabled:
            gc.enable()


async def measure_tasks(
    conn: Connection, tasks: Sequence[CompiledTask], personal: PersonalFields
) -> list[TaskFigures]:
    """Every task's figures over the whole audit store, reading only what changed."""
    if tasks:
        await refresh(conn, tasks, personal)
    return await kept_figures(conn, tasks)


async def clear_task_cache(conn: Connection) -> int:
    """Drop every kept contribution (the next call computes them all again); returns how
    many rows went."""
    cur = await conn.execute("SELECT count(*) FROM measure_task_customers")
    rows = int((await cur.fetchone() or (0,))[0])
    await conn.execute("TRUNCATE measure_task_definitions, measure_task_customers")
    return rows
