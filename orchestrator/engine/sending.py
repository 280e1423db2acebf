"""What a `send` step decides once its window is open: a message, or why none went out."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from liquid.exceptions import LiquidError

from orchestrator.engine.actions import Action, ConditionFailed, Sent, Suppressed
from orchestrator.engine.config import EngineConfig
from orchestrator.engine.rules import ADDRESS_FIELDS, blocked_reason
from orchestrator.engine.state import CustomerState, Instance
from orchestrator.journey.plan import CompiledJourney, StepPlan

__all__ = ["fallback_message_id", "send_actions", "try_channels"]


def send_actions(
    now: float,
    state: CustomerState,
    *,
    instance: Instance,
    plan: CompiledJourney,
    step: StepPlan,
    scope: dict[str, Any],
    config: EngineConfig,
) -> list[Action]:
    """The actions of one send at `now`: at most one `Sent`, on the first channel that can.

    The journey's frequency cap suppresses the step outright; otherwise each channel in order
    is tried and, when blocked (consent, address, global cap, suppressed address, a template
    failing to render), suppressed with the reason. Records the send time in `state.sends`
    (the caller's private copy).
    """
    recent = _recent_sends(now, state, plan)
    if plan.cap is not None and len(recent) >= plan.cap[0]:
        return [
            Suppressed(
                now,
                state.customer_id,
                plan.id,
                instance.instance_id,
                step.id,
                step.channels[0],
                "frequency_cap",
            )
        ]
    actions, sent = try_channels(
        now,
        state,
        instance=instance,
        plan=plan,
        step=step,
        scope=scope,
        config=config,
        channels=step.channels,
        message_id=_message_id(state.customer_id, instance, step.id),
    )
    if sent:
        recent.append(now)
    return actions


def try_channels(
    now: float,
    state: CustomerState,
    *,
    instance: Instance,
    plan: CompiledJourney,
    step: StepPlan,
    scope: dict[str, Any],
    config: EngineConfig,
    channels: Sequence[str],
    message_id: str,
) -> tuple[list[Action], bool]:
    """Try `channels` in order; send `message_id` on the first that can. (actions, sent?)

    A sent message is remembered with the channels after it, so a later `message.failed`
    for it can go on to them (see `engine.fallback`).
    """
    customer = state.customer_id
    actions: list[Action] = []
    template = plan.templates[step.template or ""]
    for index, channel in enumerate(channels):
        to = _address(channel, state.profile)
        reason = blocked_reason(channel, plan.category, state.consent, state.profile)
        if reason is None and to is not None and f"{channel}:{to}" in state.suppressed:
            reason = "suppressed_address"
        if reason is None and _over_global_cap(now, state, config, channel):
            reason = "global_cap"
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
        if channel in config.global_cap:
            state.channel_sends.setdefault(channel, []).append(now)
        state.remember_message(
            message_id,
            {
                "journey": plan.id,
                "version": plan.version,
                "instance_id": instance.instance_id,
                "entered_at": instance.entered_at,
                "variant": instance.variant,
                "step": step.id,
                "channel": channel,
                "to": to,
                "fallback": list(channels[index + 1 :]),
                # Where the instance was: a late bounce falls back only if it has not moved.
                "steps_run": instance.steps_run,
            },
        )
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
                to=to,
                message_id=message_id,
                category=plan.category,
                # Any status but opted_out (blocked above) counts as not set.
                consent="opted_in" if state.consent.get(channel) == "opted_in" else "not_set",
                survey=step.survey,
            )
        )
        return actions, True
    return actions, False


def fallback_message_id(failed_message_id: str) -> str:
    """The id of the message that replaces a failed one (stable on replay)."""
    return hashlib.sha256(f"{failed_message_id}\0fallback".encode()).hexdigest()[:32]


def _over_global_cap(now: float, state: CustomerState, config: EngineConfig, channel: str) -> bool:
    """Whether the customer already had the channel's global cap of sends in its period.

    Drops send times older than the period (and every time of an uncapped channel).
    """
    cap = config.global_cap.get(channel)
    if cap is None:
        state.channel_sends.pop(channel, None)
        return False
    recent = [t for t in state.channel_sends.get(channel, []) if t > now - cap[1]]
    state.channel_sends[channel] = recent
    return len(recent) >= cap[0]


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
