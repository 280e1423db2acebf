"""Event time in the pure engine: timers due by an event's time fire first, whatever the lag."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from orchestrator import jsonwire
from orchestrator.engine.actions import Action, Exited, LateEvent, Sent, TimerFired, TimerSet
from orchestrator.engine.advance import advance, fire_due
from orchestrator.engine.catalog import DeployedJourney, catalog_of
from orchestrator.engine.events import Event, timer_event
from orchestrator.engine.state import CustomerState
from tests.journey_fixtures import DAY, HOUR, REACHABLE, T0, compile_journey, event

NOTE = {
    "note": """\
    in_app:
      title: "{{ event.name }}"
      body: "{{ journey.last_event.name }} {{ journey.last_event.properties.rating }}"
    """
}

# The journey of issue 11: confirm, settle 3 s, then wait 4 s for the customer's confirmation.
CONFIRM = compile_journey(
    """\
    id: confirm
    name: Confirm delivery
    trigger: {event: order.placed}
    steps:
      - id: confirm
        send: {channel: in_app, template: note}
      - id: settle
        wait: 3s
      - id: await_confirmation
        wait_for:
          event: delivery.confirmed
          timeout: 4s
          on_event: thanks
          on_timeout: chase
      - id: chase
        send: {channel: in_app, template: note}
        next: end
      - id: thanks
        send: {channel: in_app, template: note}
      - id: end
        exit: {}
    """,
    NOTE,
)
CATALOG = catalog_of([CONFIRM])


def start(at: float = T0) -> CustomerState:
    """c1, reachable, has placed an order at `at` (and the worker applied it then)."""
    state, _ = advance(CustomerState("c1", profile=dict(REACHABLE)), order(at), CATALOG, at)
    return state


def order(at: float) -> Event:
    return event("order.placed", at)


def confirmed(at: float, rating: int = 5) -> Event:
    return event("delivery.confirmed", at, rating=rating)


def sent_steps(actions: Sequence[Action]) -> list[tuple[str, float]]:
    return [(a.step, a.at) for a in actions if isinstance(a, Sent)]


def test_a_lagging_worker_fires_the_timers_due_before_an_event_first() -> None:
    state = start()
    # The settle timer (due +3 s) has not arrived yet; the worker is a minute behind.
    after, actions = advance(state, confirmed(T0 + 5), CATALOG, now=T0 + 60)
    assert [(a.timer, a.due) for a in actions if isinstance(a, TimerFired)] == [("1", T0 + 3)]
    assert sent_steps(actions) == [("thanks", T0 + 5)]
    assert [(a.reason, a.at) for a in actions if isinstance(a, Exited)] == [("completed", T0 + 5)]
    # The wait_for started at the settle timer's due time, not when the worker got to it.
    [wait_for] = [a for a in actions if isinstance(a, TimerSet)]
    assert wait_for.due == T0 + 3 + 4
    assert after.clock == T0 + 5


def test_the_later_record_of_a_timer_already_fired_changes_nothing() -> None:
    state = start()
    after, _ = advance(state, confirmed(T0 + 5), CATALOG, now=T0 + 60)
    late_record = timer_event("c1", "confirm", "confirm:1", "1", T0 + 3)
    again, actions = advance(after, late_record, CATALOG, now=T0 + 61)
    assert actions == []
    assert again is after


def test_an_event_stamped_in_the_future_does_not_fire_timers_early() -> None:
    state = start()
    # A channel app's clock runs 10 s ahead: the event claims +10 s while it is +2 s.
    after, actions = advance(state, confirmed(T0 + 10), CATALOG, now=T0 + 2)
    assert not any(isinstance(a, TimerFired) for a in actions)
    assert after.clock == T0 + 2
    # Still settling at +2 s: the confirmation came before the wait_for, so it is ignored.
    assert after.instances["confirm"].step == "settle"
    assert sent_steps(actions) == []


def test_an_event_older_than_a_fired_timer_is_late_applied_as_of_then_and_reported() -> None:
    state = start()
    # The settle timer and the wait_for's timeout fired (at +3 and +7 s): chase went out.
    state, actions = advance(
        state, timer_event("c1", "confirm", "confirm:1", "2", T0 + 7), CATALOG, T0 + 8
    )
    assert sent_steps(actions) == [("chase", T0 + 7)]
    # A confirmation that happened at +5 s reaches the worker only now: it cannot rewind.
    late = confirmed(T0 + 5)
    after, actions = advance(state, late, CATALOG, now=T0 + 9)
    assert actions == [LateEvent(T0 + 7, "c1", late.event_id, T0 + 5)]
    assert after.clock == T0 + 7
    assert late.event_id in after.applied


def test_a_late_trigger_enters_as_of_the_customers_clock() -> None:
    state, _ = fire_due(start(), T0 + 3, CATALOG)
    assert state.clock == T0 + 3
    other = compile_journey(
        "id: other\nname: Other\ntrigger: {event: delivery.confirmed}\n"
        "steps:\n  - id: pause\n    wait: 1h\n",
        NOTE,
    )
    catalog = catalog_of([CONFIRM, other])
    after, actions = advance(state, confirmed(T0 + 1), catalog, now=T0 + 30)
    assert isinstance(actions[0], LateEvent)
    assert after.instances["other"].entered_at == T0 + 3
    assert [a.due for a in actions if isinstance(a, TimerSet)] == [T0 + 3 + HOUR]


def test_timers_of_several_journeys_fire_in_due_order_each_at_its_time() -> None:
    hourly = compile_journey(
        "id: a-hourly\nname: Hourly\ntrigger: {event: order.placed}\n"
        "steps:\n  - id: one\n    wait: 1h\n"
        "  - id: ping\n    send: {channel: in_app, template: note}\n"
        "  - id: two\n    wait: 1h\n  - id: pong\n    send: {channel: in_app, template: note}\n",
        NOTE,
    )
    catalog = catalog_of([CONFIRM, hourly])
    state, _ = advance(CustomerState("c1", profile=dict(REACHABLE)), order(T0), catalog, T0)
    _, actions = advance(state, event("page.viewed", T0 + 3 * HOUR), catalog, T0 + 5 * HOUR)
    fired = [(a.journey, a.due) for a in actions if isinstance(a, TimerFired)]
    assert fired == [
        ("confirm", T0 + 3),
        ("confirm", T0 + 7),
        ("a-hourly", T0 + HOUR),
        ("a-hourly", T0 + 2 * HOUR),
    ]
    assert sent_steps(actions) == [
        ("chase", T0 + 7),
        ("ping", T0 + HOUR),
        ("pong", T0 + 2 * HOUR),
    ]


def test_max_duration_and_quiet_hours_fire_inline_too() -> None:
    night = datetime(2026, 5, 4, 22, 0, tzinfo=UTC).timestamp()
    journey = compile_journey(
        """\
        id: quiet
        name: Quiet
        trigger: {event: order.placed}
        max_duration: 2d
        send_window: {start: "08:00", end: "20:00"}
        steps:
          - id: hello
            send: {channel: in_app, template: note}
          - id: linger
            wait: 7d
        """,
        NOTE,
    )
    catalog = catalog_of([journey])
    state, actions = advance(CustomerState("c1"), order(night), catalog, night)
    assert sent_steps(actions) == []  # deferred to 08:00
    morning = datetime(2026, 5, 5, 8, 0, tzinfo=UTC).timestamp()
    # Nothing arrives until three days later; the worker is an hour behind even then.
    _, actions = advance(
        state, event("page.viewed", night + 3 * DAY), catalog, night + 3 * DAY + HOUR
    )
    assert sent_steps(actions) == [("hello", morning)]
    assert [(a.reason, a.at) for a in actions if isinstance(a, Exited)] == [
        ("expired", night + 2 * DAY)
    ]


def test_journey_last_event_is_the_trigger_then_the_event_that_ended_a_wait_for() -> None:
    timed_out, actions = advance(
        start(), timer_event("c1", "confirm", "confirm:1", "1", T0 + 3), CATALOG, T0 + 3
    )
    _, actions = advance(timed_out, event("page.viewed", T0 + 60), CATALOG, T0 + 60)
    [chase] = [a for a in actions if isinstance(a, Sent)]
    # After a timer, `event` is the internal timer.fired; `journey.last_event` the trigger.
    assert chase.content == {"title": "timer.fired", "body": "order.placed "}

    _, actions = advance(start(), confirmed(T0 + 5, rating=4), CATALOG, T0 + 5)
    [thanks] = [a for a in actions if isinstance(a, Sent)]
    assert thanks.content == {"title": "delivery.confirmed", "body": "delivery.confirmed 4"}


def test_last_event_is_seen_after_a_wait_and_by_conditions() -> None:
    journey = compile_journey(
        """\
        id: rated
        name: Rated
        trigger: {event: order.placed}
        steps:
          - id: ask
            wait_for: {event: delivery.confirmed, timeout: 1d, on_event: pause}
          - id: pause
            wait: 1h
          - id: route
            branch:
              - when: journey.last_event.properties.rating >= 4
                next: thanks
              - default: sorry
          - id: thanks
            send: {channel: in_app, template: note}
            next: end
          - id: sorry
            send: {channel: in_app, template: note}
          - id: end
            exit: {}
        """,
        NOTE,
    )
    catalog = catalog_of([journey])
    for rating, step in ((5, "thanks"), (2, "sorry")):
        state, _ = advance(CustomerState("c1"), order(T0), catalog, T0)
        state, _ = advance(state, confirmed(T0 + HOUR, rating=rating), catalog, T0 + HOUR)
        # The runtime stores the state between events: the last event and clock survive it.
        assert CustomerState.from_wire(jsonwire.loads(jsonwire.dumps(state.to_wire()))) == state
        _, actions = fire_due(state, T0 + 2 * HOUR, catalog)
        [sent] = [a for a in actions if isinstance(a, Sent)]
        assert (sent.step, sent.content["body"]) == (step, f"delivery.confirmed {rating}")


def test_a_step_timer_of_a_version_not_yet_loaded_waits_for_it() -> None:
    state = start()
    unknown = {"confirm": DeployedJourney(versions={}, current=1)}
    later, actions = advance(state, event("page.viewed", T0 + 60), unknown, T0 + 60)
    assert not any(isinstance(a, TimerFired) for a in actions)
    assert later.instances["confirm"].waiting == "wait"
    # Once the version is known, the next event fires it; the customer's clock has passed
    # its due time meanwhile, and does not go back: the wait_for starts at +60 s.
    _, actions = advance(later, event("page.viewed", T0 + 61), CATALOG, T0 + 61)
    assert [a.due for a in actions if isinstance(a, TimerFired)] == [T0 + 3]
    assert [a.due for a in actions if isinstance(a, TimerSet)] == [T0 + 60 + 4]
