"""What a `send` step decides once its window is open: a message, or why none went out."""

from __future__ import annotations

import hashlib
from typing import Any

from liquid.exceptions import LiquidError

from orchestrator.engine.actions import Action, ConditionFailed, Sent, Suppressed
from orchestrator.engine.rules import ADDRESS_FIELDS, blocked_reason
from orchestrator.engine.state import CustomerState, Instance
from orchestrator.journey.plan import CompiledJourney, StepPlan

__all__ = ["send_actions"]


def send_actions(
    now: float,
    state: CustomerState,
    *,
    instance: Instance,
    plan: CompiledJourney,
    step: StepPlan,
    scope: dict[str, Any],
) -> list[Action]:
    """The actions of one send at `now`: at most one `Sent`, on the first channel that can.

    A frequency cap suppresses the step outright; otherwise each channel in order is tried
    and, when blocked (consent, address, a template failing to render), suppressed with the
    reason. Records the send time in `state.sends` (the caller's private copy).
    """
    customer = state.customer_id
    recent = _recent_sends(now, state, plan)
    if plan.cap is not None and len(recent) >= plan.cap[0]:
        return [
            Suppressed(
                now,
                customer,
                plan.id,
                instance.instance_id,
                step.id,
                step.channels[0],
                "frequency_cap",
            )
        ]
    actions: list[Action] = []
    template = plan.templates[step.template or ""]
    for channel in step.channels:
        reason = blocked_reason(channel, plan.category, state.consent, state.profile)
        if reason is None:
            try:
                content = template.render(channel, state.profile.get("locale"), scope)
            except LiquidError as exc:
                actions.append(
                    ConditionFailed(now, customer, plan.id, step.id, template.name, str(exc))
                )
                reason = "render_error"
        if reason is not None:
            actions.append(
                Suppressed(now, customer, plan.id, instance.instance_id, step.id, channel, reason)
            )
            continue
        recent.append(now)
        actions.append(
            Sent(
                at=now,
                customer_id=customer,
                journey=plan.id,
                version=plan.version,
                instance_id=instance.instance_id,
                step=step.id,
                channel=channel,
                template=template.name,
                variant=instance.variant,
                content=content,
                to=_address(channel, state.profile),
                message_id=_message_id(customer, instance, step.id),
                category=plan.category,
            )
        )
        break
    return actions


def _recent_sends(now: float, state: CustomerState, plan: CompiledJourney) -> list[float]:
    """This journey's send times still inside its cap's period (all are dropped if uncapped)."""
    horizon = now - plan.cap[1] if plan.cap is not None else now
    recent = [t for t in state.sends.get(plan.id, []) if t > horizon]
    state.sends[plan.id] = recent
    return recent


def _address(channel: str, profile: dict[str, Any]) -> str | None:
    address_field = ADDRESS_FIELDS.get(channel)
    return str(profile[address_field]) if address_field and profile.get(address_field) else None


def _message_id(customer_id: str, instance: Instance, step: str) -> str:
    key = f"{customer_id}\0{instance.instance_id}\0{step}\0{instance.steps_run}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]
