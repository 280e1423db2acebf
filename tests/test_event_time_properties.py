"""Property: whatever the delivery schedule, the engine decides as in event-time order.

A live worker applies each customer's events in order, each at or after its `occurred_at`,
and the `timer.fired` records of the timers it set arrive late and interleaved with events
in any order. Applying everything in event-time order (`simulate`) must give the same
actions, apart from late events (an event older than a timer that already fired), which are
applied as of the customer's clock: the reference moves them to that time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.engine.actions import Action, LateEvent, TimerFired, TimerSet
from orchestrator.engine.advance import advance
from orchestrator.engine.events import Event, timer_event
from orchestrator.engine.state import CustomerState
from orchestrator.simulate import Simulator
from tests.journey_fixtures import DAY, HOUR, MINUTE
from tests.test_engine_properties import CATALOG, event_lists

LAGS = [0.0, 0.0, 0.0, 1.0, MINUTE, HOUR, 5 * HOUR, DAY, 3 * DAY]


def by_customer(actions: list[Action]) -> dict[str, list[Action]]:
    grouped: dict[str, list[Action]] = defaultdict(list)
    for action in actions:
        if not isinstance(action, LateEvent):
            grouped[action.customer_id].append(action)
    return dict(grouped)


class LiveRun:
    """A worker's view: events and timer records applied in one delivery order."""

    def __init__(self) -> None:
        self.states: dict[str, CustomerState] = {}
        self.actions: list[Action] = []
        self.timers: list[TimerSet] = []  # set and not yet delivered (cancelled ones too)
        self.now = 0.0

    def apply(self, event: Event, now: float) -> None:
        self.now = max(self.now, now)
        state = self.states.get(event.customer_id) or CustomerState(event.customer_id)
        state, actions = advance(state, event, CATALOG, self.now)
        self.states[event.customer_id] = state
        self.actions.extend(actions)
        self.timers.extend(a for a in actions if isinstance(a, TimerSet))

    def deliver(self, timer: TimerSet) -> None:
        """The timer's `timer.fired` record arrives (never before its due time)."""
        self.timers.remove(timer)
        record = timer_event(
            timer.customer_id, timer.journey, timer.instance_id, timer.timer, timer.due
        )
        self.apply(record, max(self.now, timer.due))


@settings(max_examples=150, deadline=None)
@given(events=event_lists(), data=st.data())
def test_any_delivery_schedule_decides_as_event_time_order(
    events: list[Event], data: st.DataObject
) -> None:
    ordered = sorted(events, key=lambda e: e.occurred_at)
    live = LiveRun()
    for event in ordered:
        lag = data.draw(st.sampled_from(LAGS), label="lag")
        applied_at = max(live.now, event.occurred_at + lag)
        # Timer records already due by then may arrive first, in any order, or stay queued.
        due = [t for t in live.timers if t.due <= applied_at]
        for timer in data.draw(st.permutations(due), label="timer order"):
            if data.draw(st.booleans(), label="delivered before the event"):
                live.deliver(timer)
        live.apply(event, applied_at)
    while live.timers:  # the rest arrive after the last event, in any order
        live.deliver(data.draw(st.sampled_from(live.timers), label="next timer"))

    late = {a.event_id: a for a in live.actions if isinstance(a, LateEvent)}
    reference = [
        replace(e, occurred_at=late[e.event_id].at) if e.event_id in late else e for e in ordered
    ]
    simulator = Simulator(CATALOG)
    expected = list(simulator.run(reference, until=None))
    assert by_customer(live.actions) == by_customer(expected)
    assert {c: s.to_wire() for c, s in live.states.items()} == {
        c: s.to_wire() for c, s in simulator.states.items()
    }
    # A late event is applied at the due time of a timer that fired before it arrived.
    fired = {(a.customer_id, a.due) for a in expected if isinstance(a, TimerFired)}
    for notice in late.values():
        assert notice.at > notice.occurred_at
        assert (notice.customer_id, notice.at) in fired


@settings(max_examples=60, deadline=None)
@given(events=event_lists(), data=st.data())
def test_with_timely_timer_records_no_event_is_late(
    events: list[Event], data: st.DataObject
) -> None:
    """A worker that lags but receives each timer record only after the events before it
    in event time (as a partition does when events are published on time) sees no late
    event, and decides exactly as `simulate`."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    live = LiveRun()
    for event in ordered:
        for timer in [t for t in live.timers if t.due <= event.occurred_at]:
            if data.draw(st.booleans(), label="record already arrived"):
                live.deliver(timer)
        live.apply(event, event.occurred_at + data.draw(st.sampled_from(LAGS), label="lag"))
    while live.timers:
        live.deliver(live.timers[0])
    assert not any(isinstance(a, LateEvent) for a in live.actions)
    simulator = Simulator(CATALOG)
    assert by_customer(live.actions) == by_customer(list(simulator.run(ordered, until=None)))
