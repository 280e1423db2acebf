"""How one customer's journeys move: the step machine behind `advance()` and `fire_due()`.

A `Run` works on a private copy of one customer's state. Each operation (fire the timers due
up to an instant, apply one event) sets the engine time `now` it happens at and the `event`
that conditions and templates see, then moves instances through their steps, collecting
actions in order. Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from typing import Any

from liquid.exceptions import LiquidError

from orchestrator.engine.actions import (
    Action,
    ConditionFailed,
    Entered,
    Exited,
    LateEvent,
    ProfileChanged,
    TimerCancelled,
    TimerFired,
    TimerSet,
)
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.config import DEFAULT_CONFIG, EngineConfig
from orchestrator.engine.events import (
    CONSENT_UPDATED,
    JOURNEY_ARCHIVED,
    MESSAGE_FAILED,
    PROFILE_UPDATED,
    Event,
    timer_event,
)
from orchestrator.engine.fallback import failed_message_actions
from orchestrator.engine.rules import choose_variant, next_window_opening, split_bucket
from orchestrator.engine.sending import send_actions
from orchestrator.engine.state import CustomerState, Instance
from orchestrator.journey.conditions import Condition
from orchestrator.journey.plan import CompiledJourney, StepPlan
from orchestrator.timefmt import format_instant

__all__ = ["EXPIRY_TIMER", "MAX_FIRINGS_PER_CALL", "MAX_STEPS_PER_EVENT", "Run"]

EXPIRY_TIMER = "expire"
# A validated journey cannot loop without waiting; this bounds a bad one anyway.
MAX_STEPS_PER_EVENT = 500
# A journey waiting in a loop (wait 1h, send, wait 1h...) fires once per turn; an event a
# year after the last one fires ~9,000 timers first. Beyond this bound the rest fire later,
# from their own `timer.fired` records, instead of stalling one event.
MAX_FIRINGS_PER_CALL = 20_000
_CONSENT_STATUSES = frozenset({"opted_in", "opted_out"})


class Run:
    """Operations on one customer's state (a private copy); collects actions as it goes."""

    def __init__(
        self, state: CustomerState, catalog: Catalog, config: EngineConfig = DEFAULT_CONFIG
    ) -> None:
        self.state = state
        self.catalog = catalog
        self.config = config
        self.actions: list[Action] = []
        self.now = state.clock
        self._event_scope: dict[str, Any] = {}

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
        if event.name == MESSAGE_FAILED:
            self.actions += failed_message_actions(
                self.now,
                self.state,
                event,
                catalog=self.catalog,
                config=self.config,
                scope=self._scope,
            )
        for journey_id in sorted(self.state.instances):
            self._offer_event(self.state.instances[journey_id], event.name)
        for journey_id in sorted(self.catalog):
            self._maybe_enter(journey_id, event.name)

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
            self._run(instance, plan, step.id)

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

    def _maybe_enter(self, journey_id: str, name: str) -> None:
        deployed = self.catalog[journey_id]
        if deployed.status != "active" or journey_id in self.state.instances:
            return
        plan = deployed.latest()
        if plan.trigger_event != name or not self._may_reenter(plan):
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

    def _run(self, instance: Instance, plan: CompiledJourney, step_id: str | None) -> None:
        """Execute steps from `step_id` until one waits or the instance ends."""
        for _ in range(MAX_STEPS_PER_EVENT):
            if step_id is None:
                self._exit(instance, "completed")
                return
            step = plan.steps[step_id]
            instance.step = step_id
            instance.steps_run += 1
            kind = step.kind
            if kind in ("wait", "wait_for"):
                self._wait(instance, kind, self.now + step.seconds)
                return
            if kind == "send":
                if not self._send(instance, plan, step):
                    return
                step_id = step.next
            elif kind == "branch":
                step_id = self._branch(instance, step)
            elif kind == "split":
                instance.variant, step_id = choose_variant(
                    split_bucket(self.state.customer_id, plan.id, step.id), step.arms
                )
            elif kind == "update_profile":
                self._update_profile(instance, step)
                step_id = step.next
            else:
                self._exit(instance, "completed")
                return
        self.actions.append(
            ConditionFailed(
                self.now,
                self.state.customer_id,
                plan.id,
                step_id,
                "",
                "step limit reached: the journey loops",
            )
        )
        self._exit(instance, "error")

    def _wait(self, instance: Instance, waiting: str, due: float) -> None:
        instance.timer += 1
        instance.waiting = waiting
        instance.wake_at = due
        self.actions.append(
            TimerSet(
                due,
                self.state.customer_id,
                instance.journey,
                instance.instance_id,
                str(instance.timer),
            )
        )

    def _send(self, instance: Instance, plan: CompiledJourney, step: StepPlan) -> bool:
        """Send, suppress or defer. Returns False when deferred to the send window."""
        if plan.window is not None:
            opening = next_window_opening(self.now, plan.window, self.state.profile.get("timezone"))
            if opening is not None:
                self._wait(instance, "window", opening)
                return False
        self.actions.extend(
            send_actions(
                self.now,
                self.state,
                instance=instance,
                plan=plan,
                step=step,
                scope=self._scope(instance),
                config=self.config,
            )
        )
        return True

    def _branch(self, instance: Instance, step: StepPlan) -> str | None:
        for condition, target in step.cases:
            if self._holds(condition, instance, step.id):
                return target
        return step.default

    def _update_profile(self, instance: Instance, step: StepPlan) -> None:
        changes: dict[str, Any] = {}
        scope = self._scope(instance)
        for key, value in step.updates.items():
            if hasattr(value, "render"):
                try:
                    changes[key] = value.render(**scope)
                except LiquidError as exc:
                    self.actions.append(
                        ConditionFailed(
                            self.now,
                            self.state.customer_id,
                            instance.journey,
                            step.id,
                            key,
                            str(exc),
                        )
                    )
                    continue
            else:
                changes[key] = value
        self.state.profile.update(changes)
        self.actions.append(
            ProfileChanged(self.now, self.state.customer_id, instance.journey, step.id, changes)
        )

    def _exit(self, instance: Instance, reason: str) -> None:
        self._cancel_step_timer(instance)
        if instance.expires_at is not None and reason != "expired":
            self.actions.append(
                TimerCancelled(
                    self.state.customer_id, instance.journey, instance.instance_id, EXPIRY_TIMER
                )
            )
        del self.state.instances[instance.journey]
        self.actions.append(
            Exited(self.now, self.state.customer_id, instance.journey, instance.instance_id, reason)
        )

    def _cancel_step_timer(self, instance: Instance) -> None:
        if instance.waiting is not None:
            self.actions.append(
                TimerCancelled(
                    self.state.customer_id,
                    instance.journey,
                    instance.instance_id,
                    str(instance.timer),
                )
            )
            instance.waiting = None
            instance.wake_at = None

    def _holds(self, condition: Condition | None, instance: Instance, step: str | None) -> bool:
        if condition is None:
            return True
        result, error = condition.evaluate(self._scope(instance))
        if error is not None:
            self.actions.append(
                ConditionFailed(
                    self.now,
                    self.state.customer_id,
                    instance.journey,
                    step,
                    condition.source,
                    error,
                )
            )
        return result

    def _scope(self, instance: Instance) -> dict[str, Any]:
        return {
            "event": self._event_scope,
            "profile": self.state.profile,
            "journey": {
                "id": instance.journey,
                "entered_at": format_instant(instance.entered_at),
                "variant": instance.variant,
                "trigger": instance.trigger,
                "last_event": instance.trigger
                if instance.last_event is None
                else instance.last_event,
            },
        }

    def _plan(self, instance: Instance) -> CompiledJourney | None:
        # None only while a worker has not yet loaded the version (it keeps the instance as is).
        deployed = self.catalog.get(instance.journey)
        return deployed.versions.get(instance.version) if deployed is not None else None
