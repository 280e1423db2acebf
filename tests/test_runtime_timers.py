"""Durable timers: Redis sorted sets per partition, fired as `timer.fired` events through Kafka."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.settings import Settings
from orchestrator.timefmt import parse_instant
from tests.runtime_harness import (
    OffsetClock,
    isolated_settings,
    journey_source,
    load_customers,
    make_event,
    no_pending_timers,
    of_type,
    pending_timers,
    prepare,
    publish,
    reader,
    running_worker,
    wait_all_consumed,
    wait_until,
)

NOTE = {"tm_note": 'in_app: {title: "Note", body: "{{ journey.id }} for {{ profile.name }}"}'}

LATER = journey_source(
    """
id: tm-later
name: Send an hour later
trigger: {event: tm.later}
steps:
  - id: hold
    wait: 1h
  - id: remind
    send: {channel: in_app, template: tm_note}
""",
    NOTE,
)

QUIET = journey_source(
    """
id: tm-quiet
name: Only in office hours
send_window: {start: "09:00", end: "17:00"}
trigger: {event: tm.quiet}
steps:
  - id: greet
    send: {channel: in_app, template: tm_note}
  - id: linger
    wait: 1h
""",
    NOTE,
)

EXPIRING = journey_source(
    """
id: tm-expiring
name: Gives up after three seconds
max_duration: 3s
trigger: {event: tm.expiring}
steps:
  - id: await_never
    wait_for: {event: tm.never, timeout: 1h}
  - id: too_late
    send: {channel: in_app, template: tm_note}
""",
    NOTE,
)

REPLY = journey_source(
    """
id: tm-reply
name: Thank for a reply or remind
trigger: {event: tm.asked}
steps:
  - id: await_reply
    wait_for: {event: tm.reply, timeout: 4s, on_event: thanks, on_timeout: reminder}
  - id: reminder
    send: {channel: in_app, template: tm_reminder}
    next: end
  - id: thanks
    send: {channel: in_app, template: tm_thanks}
  - id: end
    exit: {}
""",
    {
        "tm_reminder": 'in_app: {title: "Reminder", body: "still there?"}',
        "tm_thanks": 'in_app: {title: "Thanks", body: "thanks for replying"}',
    },
)


async def test_a_timer_due_while_no_worker_runs_fires_when_one_starts(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([LATER])
    customer = "tm-sleeper"
    before = time.time()
    async with running_worker(settings):
        await publish(
            settings,
            [
                make_event(customer, "profile.updated", {"name": "Ada"}),
                make_event(customer, "tm.later"),
            ],
        )
        await wait_all_consumed(settings)
    after = time.time()

    # No worker runs now: the timer waits in the partition's sorted set.
    timers = await pending_timers(settings)
    assert [member for member, _ in timers] == [[customer, "tm-later", "tm-later:1", "1"]]
    due = timers[0][1]
    assert before + 3600 <= due <= after + 3600

    # A worker whose clock is two hours ahead finds it due and fires it.
    async with (
        running_worker(settings, OffsetClock(offset=2 * 3600)),
        reader(settings, topics.outbound) as outbound,
        reader(settings, topics.interactions) as log,
    ):
        sent = await outbound.until(lambda ms: len(ms) >= 1)
        records = await log.until(lambda rs: len(of_type(rs, "exit", customer)) >= 1)
        await wait_until(lambda: no_pending_timers(settings), "the fired timer left Redis")
    assert [(m["customer_id"], m["step"], m["content"]["body"]) for m in sent] == [
        (customer, "remind", "tm-later for Ada")
    ]
    # Event time: the send is dated at the timer's due time, however late the worker came.
    assert parse_instant(sent[0]["at"]) == pytest.approx(due, abs=0.001)
    fired = [
        r["event"]
        for r in of_type(records, "inbound", customer)
        if r["event"]["name"] == "timer.fired"
    ]
    assert [e["properties"]["timer"] for e in fired] == ["1"]
    assert of_type(records, "exit", customer)[0]["reason"] == "completed"


async def test_quiet_hours_defer_a_send_with_a_timer_until_the_window_opens(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([QUIET])
    # A worker living just before 09:00 UTC tomorrow: outside the window, for two seconds.
    today = datetime.now(UTC)
    opening = datetime(today.year, today.month, today.day, 9, tzinfo=UTC) + timedelta(days=1)
    clock = OffsetClock(offset=opening.timestamp() - 60 - time.time())
    customer = "tm-night-owl"

    async with (
        running_worker(settings, clock),
        reader(settings, topics.outbound) as outbound,
        reader(settings, topics.interactions) as log,
    ):
        clock.move_to(opening.timestamp() - 2)
        trigger = make_event(customer, "tm.quiet", at=clock.now())
        await publish(
            settings,
            [make_event(customer, "profile.updated", {"name": "Owl"}, at=clock.now()), trigger],
        )
        sent = await outbound.until(lambda ms: len(ms) >= 1)
        records = await log.until(
            lambda rs: any(
                r["event"]["name"] == "timer.fired" for r in of_type(rs, "inbound", customer)
            )
        )
        await wait_all_consumed(settings)
    assert trigger.occurred_at < opening.timestamp()
    assert [(m["step"], m["content"]["body"]) for m in sent] == [("greet", "tm-quiet for Owl")]
    assert parse_instant(sent[0]["at"]) == opening.timestamp()
    window_timer = next(
        r["event"]
        for r in of_type(records, "inbound", customer)
        if r["event"]["name"] == "timer.fired"
    )
    assert window_timer["properties"]["timer"] == "1"
    assert parse_instant(window_timer["occurred_at"]) == opening.timestamp()
    # The deferral was a timer of its own: the instance now waits on its second one.
    instance = (await load_customers(settings, [customer]))[customer].state.instances["tm-quiet"]
    assert (instance.step, instance.waiting, instance.timer) == ("linger", "wait", 2)


async def test_max_duration_expires_an_instance_by_timer(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([EXPIRING])
    customer = "tm-slowpoke"
    trigger = make_event(customer, "tm.expiring")

    async with (
        running_worker(settings),
        reader(settings, topics.interactions) as log,
    ):
        await publish(settings, [trigger])
        await wait_all_consumed(settings)
        timers = {tuple(member): due for member, due in await pending_timers(settings)}
        assert set(timers) == {
            (customer, "tm-expiring", "tm-expiring:1", "expire"),
            (customer, "tm-expiring", "tm-expiring:1", "1"),
        }
        records = await log.until(lambda rs: len(of_type(rs, "exit", customer)) >= 1)
        await wait_until(lambda: no_pending_timers(settings), "expiry cancels the step timer too")
        await wait_all_consumed(settings)
    (exit_record,) = of_type(records, "exit", customer)
    assert exit_record["reason"] == "expired"
    # Dated at entry + max_duration (event time; the wire keeps milliseconds).
    assert parse_instant(exit_record["at"]) == pytest.approx(trigger.occurred_at + 3, abs=0.001)
    assert not of_type(records, "send", customer)
    state = (await load_customers(settings, [customer]))[customer].state
    assert state.instances == {}


async def test_wait_for_times_out_by_timer_and_an_answered_wait_cancels_its_timer(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([REPLY])
    replier, silent = "tm-replier", "tm-silent"

    async with (
        running_worker(settings),
        reader(settings, topics.outbound) as outbound,
        reader(settings, topics.interactions) as log,
    ):
        await publish(settings, [make_event(replier, "tm.asked"), make_event(silent, "tm.asked")])
        await wait_all_consumed(settings)
        due = {member[0]: when for member, when in await pending_timers(settings)}
        assert set(due) == {replier, silent}

        await publish(settings, [make_event(replier, "tm.reply")])
        await outbound.until(lambda ms: any(m["customer_id"] == replier for m in ms))
        await wait_all_consumed(settings)
        # The answered wait's timer left the sorted set (it never fires: see below).
        assert replier not in {member[0] for member, _ in await pending_timers(settings)}

        sent = await outbound.until(lambda ms: any(m["customer_id"] == silent for m in ms))
        await wait_until(lambda: no_pending_timers(settings), "the timed-out timer left Redis")
        await wait_all_consumed(settings)
        records = await log.until(lambda rs: len(of_type(rs, "exit")) >= 2)
    by_customer = {
        c: [(m["step"], m["content"]["body"]) for m in sent if m["customer_id"] == c]
        for c in (replier, silent)
    }
    assert by_customer == {
        replier: [("thanks", "thanks for replying")],
        silent: [("reminder", "still there?")],
    }
    reminder = next(m for m in sent if m["customer_id"] == silent)
    # Dated at the timeout's due time; how late it really fired is measured by
    # bench/throughput.py, not asserted here.
    assert parse_instant(reminder["at"]) == pytest.approx(due[silent], abs=0.001)
    assert [r["reason"] for r in of_type(records, "exit", replier)] == ["completed"]
    assert [r["reason"] for r in of_type(records, "exit", silent)] == ["completed"]
    fired = [r for r in of_type(records, "inbound") if r["event"]["name"] == "timer.fired"]
    # Only the unanswered wait's timer fired: the answered one was removed, not fired.
    assert [r["customer_id"] for r in fired] == [silent]
