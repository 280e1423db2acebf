"""The journey engine: `advance(state, event, catalog, now) -> (new_state, actions)`.

Pure and deterministic: no I/O, no clock, no randomness. The streaming runtime and
`orchestrator simulate` both call exactly these functions, so they share one semantics.

Event time. Journeys run on the time things happened, not on when a worker got to them:

1. An event's time is its `occurred_at`, capped at the processing clock `now` (a clock
   skewed into the future must not fire timers early). A `timer.fired` event is the engine's
   own and is taken at its due time.
2. Before an event is applied, the customer's timers due at or before its time fire, in due
   order, each at its due time, exactly as if their `timer.fired` events had come first.
   `max_duration` expiries and sends deferred to a send window are timers too.
3. The later `timer.fired` record of a timer that already fired changes nothing.
4. An event earlier than the customer's engine time (a timer that came due after it has
   already fired) is late: it is applied as of the customer's engine time, never rewound,
   and a `LateEvent` action reports it.

So whatever the lag, live outcomes equal `simulate`'s, late events aside.
"""

from __future__ import annotations

from orchestrator.engine.actions import Action
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.config import DEFAULT_CONFIG, EngineConfig
from orchestrator.engine.events import TIMER_FIRED, Event
from orchestrator.engine.run import EXPIRY_TIMER, MAX_FIRINGS_PER_CALL, MAX_STEPS_PER_EVENT, Run
from orchestrator.engine.state import CustomerState

__all__ = [
    "EXPIRY_TIMER",
    "MAX_FIRINGS_PER_CALL",
    "MAX_STEPS_PER_EVENT",
    "advance",
    "event_time",
    "fire_due",
]


def event_time(event: Event, now: float) -> float:
    """The engine time an event is applied at: `occurred_at` capped by `now` (see above)."""
    if event.name == TIMER_FIRED:
        return event.occurred_at
    return min(event.occurred_at, now)


def advance(
    state: CustomerState,
    event: Event,
    catalog: Catalog,
    now: float,
    config: EngineConfig = DEFAULT_CONFIG,
) -> tuple[CustomerState, list[Action]]:
    """Apply one event to one customer's state, after the timers due by its time.

    Returns the new state (the input is not modified) and the actions to carry out, in order.
    An event whose `event_id` was already applied, or a `timer.fired` event with nothing left
    to fire, returns the state unchanged (the same object) and no actions. `config` holds the
    guards across journeys (global caps, address failures); the default has none.
    """
    if state.has_applied(event.event_id):
        return state, []
    run = Run(state.clone(), catalog, config)
    at = event_time(event, now)
    fired = run.fire_due(at)
    if event.name == TIMER_FIRED:
        # Timer firings are not remembered as applied: a fired timer is no longer pending,
        # so its record coming again finds nothing to do.
        return (run.state, run.actions) if fired else (state, [])
    run.apply(event, at)
    return run.state, run.actions


def fire_due(
    state: CustomerState, until: float, catalog: Catalog, config: EngineConfig = DEFAULT_CONFIG
) -> tuple[CustomerState, list[Action]]:
    """Fire the customer's timers due at or before `until`, in due order, without an event.

    What `advance` does before applying an event; `simulate` calls it to fire timers at their
    due times. Returns the state unchanged (the same object) when nothing was due.
    """
    run = Run(state.clone(), catalog, config)
    if not run.fire_due(until):
        return state, []
    return run.state, run.actions
