"""The one place interaction records are built: from engine actions, applied events,
refused outbound messages and operator actions."""

from __future__ import annotations

import uuid
from typing import assert_never

from orchestrator.contracts.codec import bounded_reason
from orchestrator.contracts.deploys import DeployRecord
from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.interactions import (
    EnterInteraction,
    ErrorInteraction,
    ExitInteraction,
    InboundInteraction,
    LateInteraction,
    OperatorInteraction,
    ProfileInteraction,
    SendInteraction,
    StepInteraction,
    SuppressInteraction,
)
from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.engine.actions import (
    ConditionFailed,
    Entered,
    Exited,
    LateEvent,
    ProfileChanged,
    Sent,
    StepEntered,
    Suppressed,
)
from orchestrator.engine.events import Event
from orchestrator.timefmt import format_instant

__all__ = [
    "ActionInteraction",
    "LoggedAction",
    "action_interaction",
    "inbound_interaction",
    "operator_interaction",
    "undelivered_interaction",
]

LoggedAction = (
    Entered
    | StepEntered
    | Sent
    | Suppressed
    | Exited
    | LateEvent
    | ProfileChanged
    | ConditionFailed
)
"""The engine actions that leave an interaction record (timer actions only change Redis)."""

ActionInteraction = (
    EnterInteraction
    | StepInteraction
    | SendInteraction
    | SuppressInteraction
    | ExitInteraction
    | LateInteraction
    | ProfileInteraction
    | ErrorInteraction
)
"""The interaction records engine actions leave."""


def inbound_interaction(event: Event, at: float, now: float) -> InboundInteraction:
    """The record every applied inbound event leaves: `at` its engine time (`event_time`),
    `now` when the worker applied it."""
    return InboundInteraction(
        record_id=f"in:{event.event_id}",
        at=format_instant(at),
        received_at=format_instant(now),
        customer_id=event.customer_id,
        event=EventRecord.of(event),
    )


def action_interaction(action: LoggedAction, event_id: str, index: int) -> ActionInteraction:
    """The record of the `index`th action caused by event `event_id` (id stable across
    redelivery). Its fields are `simulate`'s record of the action (`Action.to_record()`)
    plus `record_id`, `caused_by` and the instance (and, for a send, the message) it is of.
    """
    record_id, at = f"{event_id}:{index}", format_instant(action.at)
    customer = action.customer_id
    match action:
        case Entered():
            return EnterInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                journey=action.journey,
                version=action.version,
                instance_id=action.instance_id,
                caused_by=event_id,
            )
        case StepEntered():
            return StepInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                journey=action.journey,
                version=action.version,
                step=action.step,
                instance_id=action.instance_id,
                caused_by=event_id,
                variant=action.variant,
                holdout=action.holdout,
            )
        case Sent():
            return SendInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                journey=action.journey,
                step=action.step,
                channel=action.channel,
                template=action.template,
                variant=action.variant,
                category=action.category,
                consent=action.consent,
                survey=action.survey,
                content=action.content,
                message_id=action.message_id,
                version=action.version,
                instance_id=action.instance_id,
                caused_by=event_id,
            )
        case Suppressed():
            return SuppressInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                journey=action.journey,
                step=action.step,
                channel=action.channel,
                reason=action.reason,
                instance_id=action.instance_id,
                caused_by=event_id,
            )
        case Exited():
            return ExitInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                journey=action.journey,
                reason=action.reason,
                instance_id=action.instance_id,
                caused_by=event_id,
            )
        case LateEvent():
            return LateInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                event_id=action.event_id,
                occurred_at=format_instant(action.occurred_at),
                late_by_seconds=round(action.at - action.occurred_at, 3),
                caused_by=event_id,
            )
        case ProfileChanged():
            return ProfileInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                journey=action.journey,
                step=action.step,
                changes=action.changes,
                caused_by=event_id,
            )
        case ConditionFailed():
            return ErrorInteraction(
                record_id=record_id,
                at=at,
                customer_id=customer,
                journey=action.journey,
                step=action.step,
                expression=action.expression,
                error=action.error,
                caused_by=event_id,
            )
        case _:
            assert_never(action)


def undelivered_interaction(message: OutboundMessage, error: str, now: float) -> ErrorInteraction:
    """The record of an outbound message that could not be produced at all, and why."""
    return ErrorInteraction(
        record_id=f"undelivered:{message.message_id}",
        at=format_instant(now),
        customer_id=message.customer_id,
        journey=message.journey,
        step=message.step,
        instance_id=message.instance_id,
        channel=message.channel,
        message_id=message.message_id,
        caused_by=message.caused_by,
        expression=None,
        error=bounded_reason(error),
    )


def operator_interaction(
    record: DeployRecord, *, version: int, rolled_back_from: int | None = None
) -> OperatorInteraction:
    """The record of the operator action that just wrote deploy record `record`."""
    return OperatorInteraction(
        record_id=f"op:{uuid.uuid4().hex}",
        action=record.action,
        at=record.updated_at,
        operator=record.operator,
        journey=record.journey,
        status=record.status,
        digest=record.current_entry.digest,
        version=version,
        rolled_back_from=rolled_back_from,
    )
