"""Event time on the real broker and Redis: live sends equal `simulate`'s, whatever the lag.

The journey of issue 11: confirm an order, settle for a minute, then wait 40 s for the
customer's delivery confirmation (thanks) or chase them. Customers confirm during the wait
(thanks), during the settle (ignored: chase), never (chase), or after the timeout (chase).
Every event lies an hour in the past, so each timer is long due when a worker meets it: the
timer pump and the event backlog race, and only event-time order gives the simulator's
answer.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.control.operations import JourneyOperations
from orchestrator.engine.actions import Sent
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event, parse_event
from orchestrator.infra.settings import Settings
from orchestrator.journey.loader import compile_source
from orchestrator.simulate import Simulator
from orchestrator.timefmt import format_instant, parse_instant
from tests.outage_infra import free_port
from tests.runtime_harness import (
    OffsetClock,
    WorkerProcess,
    isolated_settings,
    journey_source,
    no_pending_timers,
    of_type,
    pending_timers,
    prepare,
    publish,
    read_all,
    reader,
    running_worker,
    topic_size,
    wait_all_consumed,
    wait_until,
)

CONFIRM = journey_source(
    """
id: et-confirm
name: Confirm delivery
trigger: {event: et.ordered}
steps:
  - id: confirm
    send: {channel: in_app, template: et_note}
  - id: settle
    wait: 60s
  - id: await_confirmation
    wait_for:
      event: et.delivery_confirmed
      timeout: 40s
      on_event: thanks
      on_timeout: chase
  - id: chase
    send: {channel: in_app, template: et_note}
    next: end
  - id: thanks
    send: {channel: in_app, template: et_note}
  - id: end
    exit: {}
""",
    {"et_note": 'in_app: {title: "{{ journey.last_event.name }}", body: "{{ event.name }}"}'},
)
# When each group confirms, in seconds after ordering (None: never).
CONFIRM_AFTER = (75.0, 30.0, None, 110.0)
SENDS_PER_CUSTOMER = 2


def orders_and_confirmations(customers: int, base: float) -> tuple[list[Event], list[Event]]:
    """Each customer orders at `base` (+1 ms apiece); groups confirm as in CONFIRM_AFTER."""
    run = f"{time.time_ns() % 10**9}"
    orders: list[Event] = []
    confirmations: list[Event] = []
    for n in range(customers):
        cid = f"et-{run}-{n}"
        t = base + n * 0.001
        orders.append(Event(f"{cid}:order", cid, "et.ordered", t, "web", {}))
        after = CONFIRM_AFTER[n % len(CONFIRM_AFTER)]
        if after is not None:
            confirmations.append(
                Event(f"{cid}:confirm", cid, "et.delivery_confirmed", t + after, "app", {})
            )
    return orders, confirmations


def simulated_sends(events: list[Event]) -> dict[str, list[tuple[str, str, Any]]]:
    """Per customer, the (step, at, content) of each send `simulate` makes, in order."""
    simulator = Simulator(catalog_of([compile_source(CONFIRM)]))
    sends: dict[str, list[tuple[str, str, Any]]] = {}
    # Through the wire format, as the worker sees them (times keep milliseconds).
    for action in simulator.run(parse_event(e.to_wire()) for e in events):
        if isinstance(action, Sent):
            sends.setdefault(action.customer_id, []).append(
                (action.step, format_instant(action.at), action.content)
            )
    return sends


def live_sends(messages: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, Any]]]:
    """The same view of the `outbound` topic, one entry per message_id, in partition order."""
    sends: dict[str, list[tuple[str, str, Any]]] = {}
    seen: set[str] = set()
    for message in messages:
        if message["message_id"] in seen:
            continue
        seen.add(message["message_id"])
        sends.setdefault(message["customer_id"], []).append(
            (message["step"], message["at"], message["content"])
        )
    return sends


def expected_sends(
    events: list[Event], records: list[dict[str, Any]]
) -> dict[str, list[tuple[str, str, Any]]]:
    """`simulate`'s sends, with any event the runtime reported late moved to its applied time
    (the one exception event time allows)."""
    late = {r["event_id"]: r["at"] for r in of_type(records, "late")}
    moved = [
        replace(e, occurred_at=parse_instant(late[e.event_id])) if e.event_id in late else e
        for e in events
    ]
    return simulated_sends(moved)


def _outcome_summary(sends: dict[str, list[tuple[str, str, Any]]]) -> dict[str, int]:
    steps: dict[str, int] = {}
    for customer_sends in sends.values():
        for step, _, _ in customer_sends:
            steps[step] = steps.get(step, 0) + 1
    return steps


async def test_events_published_while_no_worker_runs_meet_their_pending_timers_in_event_time(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([CONFIRM])
    base = time.time() - 3600
    orders, confirmations = orders_and_confirmations(120, base)

    # A worker living one second after the orders applies them: each now waits on its settle
    # timer (due a minute later in its time).
    async with running_worker(settings, OffsetClock(offset=base + 1 - time.time())):
        await publish(settings, orders)
        await wait_all_consumed(settings)
    timers = await pending_timers(settings)
    assert len(timers) == len(orders)
    assert {member[3] for member, _ in timers} == {"1"}

    # No worker runs while the confirmations arrive; their times lie after the timers' dues.
    await publish(settings, confirmations)
    events = orders + confirmations
    expected = simulated_sends(events)
    assert _outcome_summary(expected) == {"confirm": 120, "thanks": 30, "chase": 90}

    async with (
        running_worker(settings) as worker,
        reader(settings, topics.outbound) as outbound,
        reader(settings, topics.interactions) as log,
    ):
        await outbound.until(lambda ms: len(ms) >= SENDS_PER_CUSTOMER * len(orders))
        await wait_until(lambda: no_pending_timers(settings), "every timer fired")
        await wait_all_consumed(settings)
        messages = await read_all(outbound, settings)
        records = await read_all(log, settings)
        late = worker.totals.late
    assert late == 0
    assert not of_type(records, "late")
    assert live_sends(messages) == expected


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_kill_9_mid_stream_then_a_replacement_still_decides_in_event_time(
    infrastructure: Settings, tmp_path: Path, feed: str
) -> None:
    settings = isolated_settings(infrastructure, batch_max=20, feed=feed)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([CONFIRM])
    orders, confirmations = orders_and_confirmations(200, time.time() - 3600)
    events = orders + confirmations
    first_half = {e.customer_id for e in orders[:100]}

    workers: list[WorkerProcess] = []
    try:
        async with (
            reader(settings, topics.outbound) as outbound,
            reader(settings, topics.interactions) as log,
        ):
            workers.append(WorkerProcess(settings, tmp_path / "worker-a.log"))
            await publish(settings, [e for e in events if e.customer_id in first_half])
            await outbound.until(lambda ms: len(ms) >= 1)
            workers[0].kill()
            # The rest of the stream arrives while no worker runs; then a replacement starts.
            await publish(settings, [e for e in events if e.customer_id not in first_half])
            workers.append(WorkerProcess(settings, tmp_path / "worker-b.log"))
            await outbound.until(
                lambda ms: len({m["message_id"] for m in ms}) >= SENDS_PER_CUSTOMER * len(orders),
                timeout=90,
            )
            await wait_until(lambda: no_pending_timers(settings), "every timer fired", timeout=30)
            await wait_all_consumed(settings)
            messages = await read_all(outbound, settings)
            records = await read_all(log, settings)
        workers[1].terminate()
        assert live_sends(messages) == expected_sends(events, records)
        assert _outcome_summary(live_sends(messages)) == {
            "confirm": 200,
            "thanks": 50,
            "chase": 150,
        }
    finally:
        for worker in workers:
            if worker.process.poll() is None:
                worker.kill()
        for worker in workers:
            print(f"===== {worker.log_path.name}\n{worker.log()}")


async def test_an_event_published_after_its_timer_fired_is_late_counted_and_recorded(
    infrastructure: Settings,
) -> None:
    port = free_port()
    settings = isolated_settings(infrastructure, health_port=port)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([CONFIRM])
    [order], [confirmation] = orders_and_confirmations(1, time.time() - 3600)
    assert confirmation.occurred_at == order.occurred_at + 75  # during the wait_for

    async with (
        running_worker(settings) as worker,
        reader(settings, topics.outbound) as outbound,
        reader(settings, topics.interactions) as log,
    ):
        await publish(settings, [order])
        # Every timer is long due: the wait_for times out (at +100 s) and chase goes out.
        sent = await outbound.until(lambda ms: len(ms) >= SENDS_PER_CUSTOMER)
        # Only now does the channel app publish the confirmation of +75 s.
        await publish(settings, [confirmation])
        records = await log.until(lambda rs: len(of_type(rs, "late")) >= 1)
        await wait_all_consumed(settings)
        late = worker.totals.late
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            metrics = await response.text()
    assert [m["step"] for m in sent] == ["confirm", "chase"]
    [notice] = of_type(records, "late")
    assert notice["event_id"] == confirmation.event_id
    assert parse_instant(notice["occurred_at"]) == pytest.approx(
        confirmation.occurred_at, abs=0.001
    )
    assert parse_instant(notice["at"]) == pytest.approx(order.occurred_at + 100, abs=0.001)
    assert late == 1
    assert "orchestrator_worker_late_events_total 1.0" in metrics
    # Applied as of the customer's clock: nothing waits for it any more, nothing is sent.
    assert await topic_size(settings, topics.outbound) == SENDS_PER_CUSTOMER
