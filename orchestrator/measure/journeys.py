"""The journey projection: instances, steps, edges, splits and messages from the records.

It folds each batch the sink stores into the `measure_*` tables (migration 0003) inside the
sink's transaction, so every figure counts each record exactly once. A batch is folded in
memory first (the instances it touches are read once), then written with one statement per
table: the cost per batch does not grow with round trips per record.

What each record moves:
- `enter`: a new instance (entered, active).
- `step`: the step's entries; the instance's previous step gains a `passed` and the edge
  previous -> this step a count; on a split, the instance's arm.
- `send` / `suppress`: messages per step and channel (`sent`; `suppressed` with its reason).
- `exit`: the instance's end and reason; its current step gains an `exited`.
- `inbound` receipts (`message.<outcome>` with `properties.message_id`): the outcome of the
  message, once per message and outcome, counted at the send's step and channel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from orchestrator.audit.projection import StoredRecord

__all__ = ["RECEIPT_OUTCOMES", "UNKNOWN_VERSION", "JourneyProjection"]

Connection = psycopg.AsyncConnection[tuple[Any, ...]]

RECEIPT_OUTCOMES = ("delivered", "failed", "bounced", "opened", "clicked", "replied")
"""The receipts counted, as `message.<outcome>` event names."""

UNKNOWN_VERSION = 0
"""The version a message figure is counted under when its instance or send is not stored."""

_StepKey = tuple[str, int, str]  # journey, version, step
_EdgeKey = tuple[str, int, str, str]  # journey, version, from, to
_MessageKey = tuple[
    str, int, str, str, str, str
]  # journey, version, step, channel, outcome, reason
_Target = tuple[str, int, str, str]  # journey, version, step, channel
_InstanceKey = tuple[str, str]  # customer_id, instance_id (an instance id is per customer)


@dataclass(slots=True)
class _Instance:
    customer_id: str
    instance_id: str
    journey: str
    version: int
    entered_at: datetime
    current_step: str | None = None
    exited_at: datetime | None = None
    exit_reason: str | None = None


@dataclass(slots=True)
class _Fold:
    """One batch's changes, before they are written."""

    instances: dict[_InstanceKey, _Instance]
    sent_before: dict[str, _Target]
    receipts_before: set[tuple[str, str]]
    changed: set[_InstanceKey] = field(default_factory=set)
    steps: Counter[tuple[str, int, str, str]] = field(default_factory=Counter)
    edges: Counter[_EdgeKey] = field(default_factory=Counter)
    messages: Counter[_MessageKey] = field(default_factory=Counter)
    arms: list[tuple[str, str, str, str, int, str, bool]] = field(default_factory=list)
    sent: dict[str, _Target] = field(default_factory=dict)
    receipts: set[tuple[str, str]] = field(default_factory=set)


def _at(record: StoredRecord) -> datetime:
    return datetime.fromisoformat(str(record["at"]))


def _key(record: StoredRecord) -> _InstanceKey | None:
    """(customer, instance) of a record of a journey instance; None for other records."""
    instance, customer = record.get("instance_id"), record.get("customer_id")
    return (str(customer), str(instance)) if instance and customer else None


def _receipt_of(record: StoredRecord) -> tuple[str, str, Mapping[str, Any]] | None:
    """(message_id, outcome, properties) of a receipt record; None for any other record."""
    if record.get("type") != "inbound":
        return None
    event = record.get("event") or {}
    name = str(event.get("name", ""))
    outcome = name.removeprefix("message.")
    properties = event.get("properties") or {}
    message_id = properties.get("message_id")
    if not name.startswith("message.") or outcome not in RECEIPT_OUTCOMES or not message_id:
        return None
    return (
        str(message_id),
        outcome,
        {**properties, "channel": properties.get("channel") or event.get("channel")},
    )


class JourneyProjection:
    """Keeps the `measure_*` journey tables current (a `Projection` for the audit sink)."""

    name = "journeys"

    async def apply(self, conn: Connection, records: Sequence[StoredRecord]) -> None:
        """Fold `records` (in topic order per partition) into the tables, in one go."""
        fold = await _load(conn, records)
        for record in records:
            _fold(fold, record)
        await _write(conn, fold)


async def _load(conn: Connection, records: Sequence[StoredRecord]) -> _Fold:
    """The stored instances, sends and receipts the batch's records refer to."""
    keys = sorted({key for r in records if (key := _key(r)) is not None})
    receipts = [found for r in records if (found := _receipt_of(r)) is not None]
    message_ids = sorted({message_id for message_id, _, _ in receipts})
    instances: dict[_InstanceKey, _Instance] = {}
    sent: dict[str, _Target] = {}
    seen: set[tuple[str, str]] = set()
    if keys:
        cur = await conn.execute(
            "SELECT i.customer_id, i.instance_id, journey, version, entered_at, current_step,"
            " exited_at, exit_reason FROM measure_instances i"
            " JOIN unnest(%s::text[], %s::text[]) AS k (customer_id, instance_id)"
            " USING (customer_id, instance_id)",
            ([c for c, _ in keys], [i for _, i in keys]),
        )
        instances = {(row[0], row[1]): _Instance(*row) for row in await cur.fetchall()}
    if message_ids:
        cur = await conn.execute(
            "SELECT message_id, journey, version, step, channel FROM measure_sent"
            " WHERE message_id = ANY(%s)",
            (message_ids,),
        )
        sent = {row[0]: (row[1], row[2], row[3], row[4]) for row in await cur.fetchall()}
        cur = await conn.execute(
            "SELECT message_id, outcome FROM measure_receipts WHERE message_id = ANY(%s)",
            (message_ids,),
        )
        seen = {(row[0], row[1]) for row in await cur.fetchall()}
    return _Fold(instances, sent, seen)


def _fold(fold: _Fold, record: StoredRecord) -> None:
    kind = record.get("type")
    key = _key(record)
    instance = fold.instances.get(key) if key is not None else None
    if kind == "enter":
        if instance is None and key is not None:
            fold.instances[key] = _Instance(
                *key, str(record["journey"]), int(record["version"]), _at(record)
            )
            fold.changed.add(key)
    elif kind == "step":
        _fold_step(fold, record, instance)
    elif kind == "send":
        target = (
            str(record["journey"]),
            int(record["version"]),
            str(record["step"]),
            str(record["channel"]),
        )
        fold.sent[str(record["message_id"])] = target
        fold.messages[(*target, "sent", "")] += 1
    elif kind == "suppress":
        version = instance.version if instance is not None else UNKNOWN_VERSION
        where = (str(record["journey"]), version, str(record["step"]), str(record["channel"]))
        fold.messages[(*where, "suppressed", str(record["reason"]))] += 1
    elif kind == "exit":
        if instance is not None and instance.exited_at is None:
            instance.exited_at, instance.exit_reason = _at(record), str(record["reason"])
            fold.changed.add((instance.customer_id, instance.instance_id))
            if instance.current_step is not None:
                fold.steps[
                    (instance.journey, instance.version, instance.current_step, "exited")
                ] += 1
    elif (receipt := _receipt_of(record)) is not None:
        _fold_receipt(fold, *receipt)


def _fold_step(fold: _Fold, record: StoredRecord, instance: _Instance | None) -> None:
    journey, version, step = str(record["journey"]), int(record["version"]), str(record["step"])
    fold.steps[(journey, version, step, "entered")] += 1
    if record.get("variant") is not None:
        arm = (
            str(record["customer_id"]), str(record["instance_id"]), step, journey, version,
            str(record["variant"]),
        )  # fmt: skip
        fold.arms.append((*arm, bool(record.get("holdout"))))
    if instance is None or instance.exited_at is not None:
        return  # an instance entered before the projection existed: only its entries count
    if instance.current_step is not None:
        fold.steps[(journey, version, instance.current_step, "passed")] += 1
        fold.edges[(journey, version, instance.current_step, step)] += 1
    instance.current_step = step
    fold.changed.add((instance.customer_id, instance.instance_id))


def _fold_receipt(
    fold: _Fold, message_id: str, outcome: str, properties: Mapping[str, Any]
) -> None:
    if (message_id, outcome) in fold.receipts_before or (message_id, outcome) in fold.receipts:
        return
    target = fold.sent.get(message_id) or fold.sent_before.get(message_id)
    if target is None:
        journey, step, channel = (properties.get(k) for k in ("journey", "step", "channel"))
        if not (journey and step and channel):
            return  # a receipt naming no journey step, of a message the store never sent
        target = (str(journey), UNKNOWN_VERSION, str(step), str(channel))
    fold.receipts.add((message_id, outcome))
    fold.messages[(*target, outcome, "")] += 1


async def _write(conn: Connection, fold: _Fold) -> None:
    # Each table's rows sorted by key, tables in a fixed order: several sinks (`--shard`)
    # update the shared counters at once and must lock their rows in one order.
    async with conn.cursor() as cur:
        if fold.changed:
            await cur.executemany(
                "INSERT INTO measure_instances (customer_id, instance_id, journey, version,"
                " entered_at, current_step, exited_at, exit_reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (customer_id, instance_id) DO UPDATE"
                " SET current_step = excluded.current_step, exited_at = excluded.exited_at,"
                " exit_reason = excluded.exit_reason",
                [_row(fold.instances[i]) for i in sorted(fold.changed)],
            )
        if fold.steps:
            per_step: dict[_StepKey, dict[str, int]] = {}
            for (journey, version, step, column), n in fold.steps.items():
                per_step.setdefault((journey, version, step), Counter())[column] += n
            await cur.executemany(
                "INSERT INTO measure_steps AS t (journey, version, step, entered, passed, exited)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (journey, version, step) DO UPDATE"
                " SET entered = t.entered + excluded.entered, passed = t.passed + excluded.passed,"
                " exited = t.exited + excluded.exited",
                [
                    (
                        *key,
                        counts.get("entered", 0),
                        counts.get("passed", 0),
                        counts.get("exited", 0),
                    )
                    for key, counts in sorted(per_step.items())
                ],
            )
        if fold.edges:
            await cur.executemany(
                "INSERT INTO measure_edges AS t (journey, version, from_step, to_step, count)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (journey, version, from_step, to_step)"
                " DO UPDATE SET count = t.count + excluded.count",
                [(*key, n) for key, n in sorted(fold.edges.items())],
            )
        if fold.arms:
            await cur.executemany(
                "INSERT INTO measure_arms (customer_id, instance_id, step, journey, version,"
                " variant, holdout) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (customer_id, instance_id, step) DO NOTHING",
                sorted(fold.arms),
            )
        if fold.sent:
            await cur.executemany(
                "INSERT INTO measure_sent (message_id, journey, version, step, channel)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (message_id) DO NOTHING",
                [(message_id, *target) for message_id, target in sorted(fold.sent.items())],
            )
        if fold.receipts:
            await cur.executemany(
                "INSERT INTO measure_receipts (message_id, outcome) VALUES (%s, %s)",
                sorted(fold.receipts),
            )
        if fold.messages:
            await cur.executemany(
                "INSERT INTO measure_messages AS t (journey, version, step, channel, outcome,"
                " reason, count) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (journey, version, step, channel, outcome, reason)"
                " DO UPDATE SET count = t.count + excluded.count",
                [(*key, n) for key, n in sorted(fold.messages.items())],
            )


def _row(instance: _Instance) -> tuple[Any, ...]:
    return (
        instance.customer_id, instance.instance_id, instance.journey, instance.version,
        instance.entered_at, instance.current_step, instance.exited_at, instance.exit_reason,
    )  # fmt: skip
