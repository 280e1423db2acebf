"""A hand-made set of customers' interactions for the task figures' tests (hours from 0).

The expected figures are worked out by hand in `tests/test_task_figures.py` and
`tests/test_api_tasks.py`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.interactions import (
    InboundInteraction,
    SendInteraction,
    StepInteraction,
)
from orchestrator.journey.tasks import CompiledTask, compile_task
from orchestrator.measure.tasks import Interaction
from orchestrator.timefmt import format_instant, parse_instant

H = 3600.0
BASE = parse_instant("2026-06-01T00:00:00Z")
"""Hour 0 of the histories as stored records."""

ORDER_TASK = """\
id: order-to-doorstep
description: Order to doorstep
match: order_id
within: 30d
starts: {event: order.completed}
ends: {event: order.delivered}
process:
  starts: {event: order.completed}
  ends: {event: order.shipped}
"""


def task(text: str = ORDER_TASK) -> CompiledTask:
    compiled, problems = compile_task("task.yaml", text)
    assert compiled is not None, problems
    return compiled


def inbound(
    hour: float, name: str, order: int | None = None, channel: str | None = None
) -> Interaction:
    properties = {} if order is None else {"order_id": f"NW-{order}"}
    return Interaction(hour * H, "inbound", name=name, properties=properties, channel=channel)


def send(hour: float, journey: str, step: str, channel: str) -> Interaction:
    return Interaction(hour * H, "send", channel=channel, journey=journey, step=step)


def step(hour: float, journey: str, name: str) -> Interaction:
    return Interaction(hour * H, "step", journey=journey, step=name)


# A: shipped after a day; our tracking email, then the customer waits at `watch` for two days.
ANNA = [
    inbound(0, "order.completed", 1, "web"),
    inbound(24, "order.shipped", 1),
    step(24, "order-updates", "shipped"),
    send(24, "order-updates", "shipped", "email"),
    step(24, "order-updates", "watch"),
    inbound(72, "order.delivered", 1),
]
# B: a receipt (not the customer's move), a reply by email (now we owe an answer), our SMS.
BEN = [
    inbound(0, "order.completed", 2, "web"),
    inbound(10, "order.shipped", 2),
    send(10, "order-updates", "shipped", "email"),
    inbound(11, "message.delivered", channel="email"),
    inbound(30, "message.replied", channel="email"),
    send(36, "support", "answer", "sms"),
    inbound(40, "order.delivered", 2),
]
# C: three orders at once; NW-4 arrives after `within` (dropped), NW-5 never ships.
CARL = [
    inbound(0, "order.completed", 3, "web"),
    inbound(1, "order.completed", 4, "web"),
    inbound(2, "order.completed", 5, "web"),
    inbound(5, "order.shipped", 3),
    inbound(20, "order.delivered", 3),
    inbound(50, "order.delivered", 5),
    inbound(800, "order.delivered", 4),
]
# D: an order abandoned past `within`, then ordered again (a new span opens).
DORA = [
    inbound(0, "order.completed", 6, "web"),
    inbound(1000, "order.completed", 6, "web"),
    inbound(1004, "order.shipped", 6),
    inbound(1010, "order.delivered", 6),
]
# E: started, never finished.
EVE = [inbound(0, "order.completed", 8, "web")]

HISTORIES = {"anna": ANNA, "ben": BEN, "carl": CARL, "dora": DORA, "eve": EVE}


def wire_record(customer: str, index: int, item: Interaction) -> Any:
    """The record the worker would have written for `item`."""
    at = format_instant(BASE + item.at)
    if item.kind == "inbound":
        event = EventRecord(
            event_id=f"{customer}-e{index}",
            customer_id=customer,
            name=str(item.name),
            occurred_at=at,
            channel=item.channel,
            properties=dict(item.properties),
        )
        return InboundInteraction(
            record_id=f"in:{customer}-e{index}",
            at=at,
            received_at=format_instant(BASE + item.at + 60),
            customer_id=customer,
            event=event,
        )
    if item.kind == "step":
        return StepInteraction(
            record_id=f"{customer}-e{index}:1",
            at=at,
            customer_id=customer,
            journey=str(item.journey),
            version=1,
            step=str(item.step),
            instance_id=f"{customer}-i",
            caused_by=f"{customer}-e{index - 1}",
        )
    return SendInteraction(
        record_id=f"{customer}-e{index}:0",
        at=at,
        customer_id=customer,
        journey=str(item.journey),
        step=str(item.step),
        channel=str(item.channel),
        template="t",
        content={"body": "hello"},
        message_id=f"{customer}-m{index}",
        version=1,
        instance_id=f"{customer}-i",
        caused_by=f"{customer}-e{index - 1}",
    )
