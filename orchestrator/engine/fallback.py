"""What a `message.failed` receipt (or a late hard bounce) changes: the suppression list,
and the step's fallback.

A connector publishes `message.failed` when a provider refused a message for good. The engine
finds the message among the customer's recent ones (`CustomerState.messages`) and:

1. records a `Suppressed(..., "failed")` on the channel that failed;
2. when the error code says the address itself is bad (`EngineConfig.address_failure_codes`),
   puts `channel:address` on the customer's suppression list: later sends to it are
   suppressed `suppressed_address`, in every journey;
3. tries the send step's fallback channels left after the failed one, exactly as a send tries
   them after a suppression (consent, address, suppression list, global cap, rendering), with
   a new deterministic message id.

The instance is not moved: it may have gone on (or ended) since the send, and a fallback is
about that one message, not the journey's path. Nothing happens for a message the customer no
longer remembers, or whose journey version is unknown or archived.

A **late** hard bounce (`message.bounced` with `late: true`: a DSN mailed back after the relay
had taken the message, `connectors/bounces.py`) comes alone, hours or days after the send, and
its message is forgotten afterwards, so it acts once:

1. records a `Suppressed(..., "bounced")` and puts `channel:address` on the suppression list
   (every 5.x.x failure: the receiving server said the address will not take mail);
2. falls back only while the journey **still waits on that message**: the instance that sent
   it is active, paused, and has run no step since the one after the send (a `wait_for` a
   click, a `wait`). An instance that went on, or ended, gets no message hours later about
   something it is no longer doing; the journey can still react itself (`wait_for:
   message.bounced`). A fallback message inherits its original's place, so its own late
   bounce may fall back again while the instance still waits.

A soft late bounce (the server gave up on a 4.x.x) changes nothing here, as a soft bounce at
send time suppresses nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrator.engine.actions import Action, Suppressed
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.config import EngineConfig
from orchestrator.engine.events import Event
from orchestrator.engine.sending import fallback_message_id, try_channels
from orchestrator.engine.state import CustomerState, Instance

__all__ = ["bounced_message_actions", "failed_message_actions"]


def failed_message_actions(
    now: float,
    state: CustomerState,
    event: Event,
    *,
    catalog: Catalog,
    config: EngineConfig,
    scope: Callable[[Instance], dict[str, Any]],
) -> list[Action]:
    """The actions of one `message.failed` event at `now` (see the module docstring).

    `scope` gives the template scope of an instance (the run's, so templates see what a
    send at `now` would).
    """
    message_id = str(event.properties.get("message_id", ""))
    # Popped: a message fails once; its fallback (if any) is remembered under its own id.
    message = state.messages.pop(message_id, None)
    if message is None:
        return []
    channel, to = str(message["channel"]), message.get("to")
    if to and str(event.properties.get("error_code", "")) in config.address_failure_codes:
        state.suppress(f"{channel}:{to}")
    actions: list[Action] = [_suppressed(now, state, message, "failed")]
    return actions + _fall_back(
        now, state, message_id, message, catalog=catalog, config=config, scope=scope
    )


def bounced_message_actions(
    now: float,
    state: CustomerState,
    event: Event,
    *,
    catalog: Catalog,
    config: EngineConfig,
    scope: Callable[[Instance], dict[str, Any]],
) -> list[Action]:
    """The actions of one `message.bounced` event at `now`: nothing unless it is a late hard
    bounce of a remembered message (see the module docstring)."""
    properties = event.properties
    if properties.get("late") is not True or properties.get("bounce") != "hard":
        return []
    message_id = str(properties.get("message_id", ""))
    message = state.messages.pop(message_id, None)
    if message is None:
        return []
    if message.get("to"):
        state.suppress(f"{message['channel']}:{message['to']}")
    actions: list[Action] = [_suppressed(now, state, message, "bounced")]
    if not _still_waiting(state, message):
        return actions
    return actions + _fall_back(
        now, state, message_id, message, catalog=catalog, config=config, scope=scope
    )


def _suppressed(
    now: float, state: CustomerState, message: dict[str, Any], reason: str
) -> Suppressed:
    return Suppressed(
        now,
        state.customer_id,
        str(message["journey"]),
        str(message["instance_id"]),
        str(message["step"]),
        str(message["channel"]),
        reason,
    )


def _still_waiting(state: CustomerState, message: dict[str, Any]) -> bool:
    """The instance that sent `message` is active and paused at the step after the send."""
    current = state.instances.get(str(message["journey"]))
    sent_at_step = message.get("steps_run")
    return (
        current is not None
        and current.instance_id == str(message["instance_id"])
        and current.waiting is not None
        and isinstance(sent_at_step, int)
        and current.steps_run == sent_at_step + 1
    )


def _fall_back(
    now: float,
    state: CustomerState,
    message_id: str,
    message: dict[str, Any],
    *,
    catalog: Catalog,
    config: EngineConfig,
    scope: Callable[[Instance], dict[str, Any]],
) -> list[Action]:
    """Send the failed message's step on its fallback channels left, if it has any."""
    journey, step_id = str(message["journey"]), str(message["step"])
    actions: list[Action] = []
    deployed = catalog.get(journey)
    plan = deployed.versions.get(int(message["version"])) if deployed is not None else None
    fallback = [str(c) for c in message.get("fallback", [])]
    if plan is None or deployed is None or deployed.status == "archived" or not fallback:
        return actions
    step = plan.steps.get(step_id)
    if step is None or step.kind != "send":
        return actions
    instance = _instance_of(state, message)
    sent_actions, _ = try_channels(
        now,
        state,
        instance=instance,
        plan=plan,
        step=step,
        scope=scope(instance),
        config=config,
        channels=fallback,
        message_id=fallback_message_id(message_id),
    )
    replacement = state.messages.get(fallback_message_id(message_id))
    if replacement is not None and "steps_run" in message:
        # In its original's place: the instance waits on it as it did on the original.
        replacement["steps_run"] = message["steps_run"]
    actions.extend(sent_actions)
    return actions


def _instance_of(state: CustomerState, message: dict[str, Any]) -> Instance:
    """The instance that sent the message, or (once it ended) a stand-in with its id, entry
    time and variant: templates then see no trigger or last event."""
    instance_id = str(message["instance_id"])
    current = state.instances.get(str(message["journey"]))
    if current is not None and current.instance_id == instance_id:
        return current
    return Instance(
        instance_id=instance_id,
        journey=str(message["journey"]),
        version=int(message["version"]),
        entered_at=float(message["entered_at"]),
        trigger={},
        variant=message.get("variant"),
    )
