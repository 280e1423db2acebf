"""How one customer's journeys move: the step machine behind `advance()` and `fire_due()`.

A `Run` works on a private copy of one customer's state. Each operation (fire the timers due
up to an instant, apply one event) sets the engine time `now` it happens at and the `event`
that conditions and templates see, then moves instances through their steps, collecting
actions in order (the steps themselves are `StepMachine`'s, engine/steps.py). Nothing here
reads a clock or does I/O.
"""

from __future__ import annotations

from orchestrator.engine.actions import (
    Entered,
    LateEvent,
    TimerFired,
    TimerSet,
)
from orchestrator.engine.catalog import journeys_started_by
from orchestrator.engine.events import (
    CONSENT_UPDATED,
    JOURNEY_ARCHIVED,
    MESSAGE_BOUNCED,
    MESSAGE_FAILED,
    PROFILE_UPDATED,
    Event,
    timer_event,
)
from orchestrator.engine.fallback import bounced_message_actions, failed_message_actions
from orchestrator.engine.state import Instance
from orchestrator.engine.steps import EXPIRY_TIMER, MAX_STEPS_PER_EVENT, StepMachine
from orchestrator.journey.plan import CompiledJourney

__all__ = ["EXPIRY_TIMER", "MAX_FIRINGS_PER_CALL", "MAX_STEPS_PER_EVENT", "Run"]

# A journey waiting in a loop (wait 1h, send, wait 1h...) fires once per turn; an event a
# year after the last one fires ~9,000 timers first. Beyond this bound the rest fire later,
# from their own `timer.fired` records, instead of stalling one event.
MAX_FIRINGS_PER_CALL = 20_000
_CONSENT_STATUSES = frozenset({"opted_in", "opted_out"})


class Run(StepMachine):
    """Operations on one customer's state (a private copy); collects actions as it goes."""

    def fire_due(self, until: float) -> int:
        """Fire every timer due at or before `until`, earliest first, each at its due time.

        Firing one timer may set another that is also due by `until` (a wait after a send):
        it fires in turn. Returns how many fired. A step timer whose journey version is not
        loaded stays pending: it fires once the version is known.
        """
        fired = 0
        while fired < MAX_FIRINGS_PER_CALL:
            due = self._next_due(until)
            if due is None:
                break
            at, instance, timer = due
            self._fire(instance, timer, at)
            fired += 1
        return fired

    def apply(self, event: Event, at: float) -> None:
        """Apply a customer event at engine time `at` (its time, capped by the caller).

        An event earlier than what the customer's journeys already reached (a timer fired
        after its time) is late: it is applied as of that point, never rewound, and reported.
        """
        if at < self.state.clock:
            self.actions.append(
                LateEvent(self.state.clock, self.state.customer_id, event.event_id, at)
            )
        self._enter_time(max(at, self.state.clock), event)
        self.state.mark_applied(event.event_id)
        self._update_profile_and_consent(event)
        self._end_archived(event)
        receipt = {
            MESSAGE_FAILED: failed_message_actions,
            MESSAGE_BOUNCED: bounced_message_actions,
        }.get(event.name)
        if receipt is not None:
            self.actions += receipt(
                self.now,
                self.state,
                event,
                catalog=self.catalog,
                config=self.config,
                scope=self._scope,
            )
        for journey_id in sorted(self.state.instances):
            self._offer_event(self.state.instances[journey_id], event.name)
        for journey_id in journeys_started_by(self.catalog, event.name):
            self._maybe_enter(journey_id)

    def _enter_time(self, at: float, event: Event) -> None:
        self.now = at
        self.state.clock = max(self.state.clock, at)
        self._event_scope = event.scope()

    def _next_due(self, until: float) -> tuple[float, Instance, str] | None:
        """The earliest pending timer due by `until`: (due, instance, timer id).

        Ties go by journey id, and an instance's expiry before its step timer (an instance
        that expires as its wait ends has expired).
        """
        best: tuple[float, str, int] | None = None
        chosen: tuple[float, Instance, str] | None = None
        for journey_id, instance in self.state.instances.items():
            pending: list[tuple[float, int, str]] = []
            if instance.expires_at is not None:
                pending.append((instance.expires_at, 0, EXPIRY_TIMER))
            if (
                instance.waiting is not None
                and instance.wake_at is not None
                and self._plan(instance) is not None
            ):
                pending.append((instance.wake_at, 1, str(instance.timer)))
            for due, rank, timer in pending:
                order = (due, journey_id, rank)
                if due <= until and (best is None or order < best):
                    best, chosen = order, (due, instance, timer)
        return chosen

    def _fire(self, instance: Instance, timer: str, at: float) -> None:
        """Fire one pending timer at its due time, as its `timer.fired` event would."""
        customer = self.state.customer_id
        self._enter_time(
            max(at, self.state.clock),
            timer_event(customer, instance.journey, instance.instance_id, timer, at),
        )
        self.actions.append(TimerFired(at, customer, instance.journey, instance.instance_id, timer))
        deployed = self.catalog.get(instance.journey)
        if deployed is not None and deployed.status == "archived":
            self._exit(instance, "archived")
            return
        if timer == EXPIRY_TIMER:
            self._exit(instance, "expired")
            return
        plan = self._plan(instance)
        if plan is None:  # _next_due only offers step timers of loaded versions
            return
        step = plan.steps[instance.step or plan.first]
        waiting, instance.waiting, instance.wake_at = instance.waiting, None, None
        if waiting == "wait":
            self._run(instance, plan, step.next)
        elif waiting == "wait_for":
            self._run(instance, plan, step.on_timeout)
        else:  # a send deferred to its window: try the step again
            self._run(instance, plan, step.id, resumed=True)

    def _update_profile_and_consent(self, event: Event) -> None:
        props = event.properties
        if event.name == PROFILE_UPDATED:
            self.state.profile.update(props)
        elif event.name == CONSENT_UPDATED:
            channel, status = props.get("channel"), props.get("status")
            if isinstance(channel, str) and status in _CONSENT_STATUSES:
                self.state.consent[channel] = str(status)

    def _end_archived(self, event: Event) -> None:
        # A `journey.archived` event names its journey, so it ends the instance even when this
        # worker has not yet seen the archive in its catalog.
        announced = event.properties.get("journey") if event.name == JOURNEY_ARCHIVED else None
        for journey_id in sorted(self.state.instances):
            deployed = self.catalog.get(journey_id)
            if journey_id == announced or (deployed is not None and deployed.status == "archived"):
                self._exit(self.state.instances[journey_id], "archived")

    def _offer_event(self, instance: Instance, name: str) -> None:
        if instance.journey not in self.state.instances:
            return
        plan = self._plan(instance)
        if plan is None:
            return
        for rule in plan.exits:
            if rule.event == name and self._holds(rule.when, instance, None):
                self._exit(instance, "goal" if rule.goal else "exit_event")
                return
        if instance.waiting != "wait_for" or instance.step is None:
            return
        step = plan.steps[instance.step]
        if step.event == name and self._holds(step.when, instance, step.id):
            self._cancel_step_timer(instance)
            instance.last_event = self._event_scope
            self._run(instance, plan, step.on_event)

    def _maybe_enter(self, journey_id: str) -> None:
        """Enter an active journey the event triggers, unless already in it or re-entry
        forbids; its trigger condition decides."""
        if journey_id in self.state.instances:
            return
        plan = self.catalog[journey_id].latest()
        if not self._may_reenter(plan):
            return
        count = self.state.entries.get(journey_id, (0, 0.0))[0] + 1
        instance = Instance(
            instance_id=f"{journey_id}:{count}",
            journey=journey_id,
            version=plan.version,
            entered_at=self.now,
            trigger=self._event_scope,
        )
        if not self._holds(plan.trigger_when, instance, None):
            return
        self.state.entries[journey_id] = (count, self.now)
        self.state.instances[journey_id] = instance
        self.actions.append(
            Entered(
                self.now, self.state.customer_id, journey_id, plan.version, instance.instance_id
            )
        )
        if plan.max_duration is not None:
            instance.expires_at = instance.entered_at + plan.max_duration
            self.actions.append(
                TimerSet(
                    instance.expires_at,
                    self.state.customer_id,
                    journey_id,
                    instance.instance_id,
                    EXPIRY_TIMER,
                )
            )
        self._run(instance, plan, plan.first)

    def _may_reenter(self, plan: CompiledJourney) -> bool:
        previous = self.state.entries.get(plan.id)
        if previous is None or plan.reentry == "always":
            return True
        if plan.reentry == "never":
            return False
        return self.now - previous[1] >= plan.reentry
