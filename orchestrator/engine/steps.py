"""The step machine: how one instance moves through its steps until it waits or ends.

`StepMachine` holds one customer's state (a private copy), the engine time `now` and the
event conditions and templates see; `Run` (engine/run.py) adds firing timers, applying
events and entering journeys on top. Every step an instance enters leaves a `StepEntered`
action, a `split` step's with the arm chosen. Nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from typing import Any

from liquid.exceptions import LiquidError

from orchestrator.engine.actions import (
    Action,
    ConditionFailed,
    Exited,
    ProfileChanged,
    StepEntered,
    TimerCancelled,
    TimerSet,
)
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.config import DEFAULT_CONFIG, EngineConfig
from orchestrator.engine.rules import choose_variant, next_window_opening, split_bucket
from orchestrator.engine.sending import send_actions
from orchestrator.engine.state import CustomerState, Instance
from orchestrator.journey.conditions import Condition
from orchestrator.journey.plan import CompiledJourney, StepPlan
from orchestrator.timefmt import format_instant

__all__ = ["EXPIRY_TIMER", "HOLDOUT", "MAX_STEPS_PER_EVENT", "StepMachine"]

EXPIRY_TIMER = "expire"
# A validated journey cannot loop without waiting; this bounds a bad one anyway.
MAX_STEPS_PER_EVENT = 500
# What a holdout instance waits for: no timer, only an exit rule, its expiry or an archive.
HOLDOUT = "holdout"


class StepMachine:
    """Runs instances' steps on one customer's state (a private copy), collecting actions."""

    def __init__(
        self, state: CustomerState, catalog: Catalog, config: EngineConfig = DEFAULT_CONFIG
    ) -> None:
        self.state = state
        self.catalog = catalog
        self.config = config
        self.actions: list[Action] = []
        self.now = state.clock
        self._event_scope: dict[str, Any] = {}

    def _run(
        self,
        instance: Instance,
        plan: CompiledJourney,
        step_id: str | None,
        *,
        resumed: bool = False,
    ) -> None:
        """Execute steps from `step_id` until one waits or the instance ends.

        `resumed`: `step_id` is a send deferred to its window, tried again; the instance
        entered it already, so it leaves no second step record.
        """
        for _ in range(MAX_STEPS_PER_EVENT):
            if step_id is None:
                self._exit(instance, "completed")
                return
            step = plan.steps[step_id]
            instance.step = step_id
            instance.steps_run += 1
            kind = step.kind
            if kind == "split":
                # Recorded with the arm chosen, so it is done before the step record.
                step_id = self._split(instance, plan, step)
                if step_id is None:
                    return
                continue
            if not resumed:
                self._record_step(instance, step.id)
            resumed = False
            if kind in ("wait", "wait_for"):
                self._wait(instance, kind, self.now + step.seconds)
                return
            if kind == "send":
                if not self._send(instance, plan, step):
                    return
                step_id = step.next
            elif kind == "branch":
                step_id = self._branch(instance, step)
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

    def _record_step(
        self,
        instance: Instance,
        step: str,
        variant: str | None = None,
        holdout: bool | None = None,
    ) -> None:
        self.actions.append(
            StepEntered(
                self.now,
                self.state.customer_id,
                instance.journey,
                instance.version,
                instance.instance_id,
                step,
                variant,
                holdout,
            )
        )

    def _split(self, instance: Instance, plan: CompiledJourney, step: StepPlan) -> str | None:
        """Choose the customer's arm; the next step, or None when held out (it waits)."""
        bucket = split_bucket(self.state.customer_id, plan.id, step.id)
        instance.variant, target = choose_variant(bucket, step.arms)
        self._record_step(instance, step.id, instance.variant, True if target is None else None)
        if target is None:
            # Held out: no timer; an exit rule, max_duration (required) or an archive ends it.
            instance.waiting = HOLDOUT
        return target

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
        # A holdout waits without a timer: there is nothing to cancel.
        if instance.wake_at is not None:
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
