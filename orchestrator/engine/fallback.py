"""What a `message.failed` receipt changes: the suppression list, and the step's fallback.

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

__all__ = ["failed_message_actions"]


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
    journey, step_id = str(message["journey"]), str(message["step"])
    actions: list[Action] = [
        Suppressed(
            now, state.customer_id, journey, str(message["instance_id"]), step_id, channel, "failed"
        )
    ]
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
