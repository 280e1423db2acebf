"""Reading the audit store for task figures, one customer at a time.

The I/O half of `measure/tasks.py`: streams each customer's inbound, send and step records
(personal fields opened, so conditions on event properties work) into a `TaskMeasure`:
of every customer (`full_pass`, the reference the cache is tested against), or of the few
whose records changed (`customers_spans`, for `measure/task_cache.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import psycopg

from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.query import StoredRecord, stream_by_customer
from orchestrator.journey.tasks import CompiledTask
from orchestrator.measure.tasks import CustomerSpans, Interaction, TaskFigures, TaskMeasure
from orchestrator.timefmt import parse_instant

__all__ = ["TASK_RECORD_KINDS", "customers_spans", "full_pass", "interaction_of"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

TASK_RECORD_KINDS = ("inbound", "send", "step")
"""What a task's spans and gap are made of: the customer's events, our messages, our steps."""


def interaction_of(stored: StoredRecord) -> Interaction | None:
    """The `Interaction` a stored record stands for (None for a kind tasks do not read).

    An inbound record's time is its event's `occurred_at` (when the customer did it, not
    when we applied it); sends and steps carry the engine's time, itself event time.
    """
    body = stored.record
    if stored.kind == "inbound":
        event = body["event"]
        properties = event.get("properties")
        return Interaction(
            at=parse_instant(event["occurred_at"]),
            kind="inbound",
            name=event["name"],
            # An erased customer's properties read as a string: nothing to match on.
            properties=properties if isinstance(properties, dict) else {},
            channel=event.get("channel"),
        )
    if stored.kind == "send":
        return Interaction(
            at=stored.at.timestamp(),
            kind="send",
            channel=body.get("channel"),
            journey=body.get("journey"),
            step=body.get("step"),
        )
    if stored.kind == "step":
        return Interaction(
            at=stored.at.timestamp(),
            kind="step",
            journey=body.get("journey"),
            step=body.get("step"),
        )
    return None


def _history(records: Sequence[StoredRecord]) -> list[Interaction]:
    in_order = sorted(records, key=lambda record: record.seq)  # the customer's own order
    return [i for r in in_order if (i := interaction_of(r)) is not None]


async def full_pass(
    conn: Connection, tasks: Sequence[CompiledTask], personal: PersonalFields
) -> list[TaskFigures]:
    """Every task's figures over the whole audit store, every customer read."""
    measure = TaskMeasure(tasks)
    if not tasks:
        return measure.figures()
    async for records in stream_by_customer(conn, TASK_RECORD_KINDS, personal):
        measure.add_customer(_history(records))
    return measure.figures()


async def customers_spans(
    conn: Connection,
    measure: TaskMeasure,
    personal: PersonalFields,
    customers: Sequence[str] | None,
) -> AsyncIterator[tuple[str, int, list[CustomerSpans]]]:
    """Each customer, how many records of theirs were read, and their contribution to each
    of `measure`'s tasks; only `customers` when given (one with no task records does not
    come up)."""
    async for records in stream_by_customer(conn, TASK_RECORD_KINDS, personal, customers):
        yield str(records[0].customer_id), len(records), measure.spans_of(_history(records))
