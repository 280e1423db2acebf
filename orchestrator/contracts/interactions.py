"""The `interactions` topic's records: one typed record per kind, told apart by `type`.

Every record has a `record_id` that stays the same across redelivery, so audit consumers
deduplicate on it. Customer records are keyed by `customer_id`, operator records by
`journey:<id>`. `recording.py` builds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Tag, TypeAdapter, model_validator

from orchestrator.contracts.base import SCHEMA_VERSION, SchemaVersion, WireRecord
from orchestrator.contracts.deploys import OperatorAction
from orchestrator.contracts.events import EventRecord
from orchestrator.engine.catalog import JourneyStatus

__all__ = [
    "INTERACTION_RECORD",
    "DataAccessInteraction",
    "EnterInteraction",
    "ErasureInteraction",
    "ErrorInteraction",
    "ExitInteraction",
    "InboundInteraction",
    "InteractionKind",
    "InteractionRecord",
    "KeyAction",
    "KeyInteraction",
    "LateInteraction",
    "OperatorInteraction",
    "ProfileInteraction",
    "ProviderInteraction",
    "ProviderOutcome",
    "SendInteraction",
    "StepInteraction",
    "SuppressInteraction",
]


class InteractionKind(StrEnum):
    """The `type` of an interaction record."""

    INBOUND = "inbound"
    ENTER = "enter"
    STEP = "step"
    SEND = "send"
    SUPPRESS = "suppress"
    EXIT = "exit"
    PROFILE = "profile"
    ERROR = "error"
    LATE = "late"
    OPERATOR = "operator"
    DATA_ACCESS = "data_access"
    PROVIDER = "provider"
    ERASURE = "erasure"


class ProviderOutcome(StrEnum):
    """What a provider said to one delivery attempt."""

    DELIVERED = "delivered"
    FAILED = "failed"
    RETRY = "retry"


class KeyAction(StrEnum):
    """What an admin did to an API key (an `operator` record with a `key.` action)."""

    CREATE = "key.create"
    REVOKE = "key.revoke"


@dataclass(slots=True, kw_only=True)
class InboundInteraction(WireRecord):
    """An applied inbound event (`record_id` = `in:<event_id>`).

    `at` is the event's engine time (its `occurred_at` capped at the processing clock, as
    the engine applies it), so it sorts with the records of the actions it caused;
    `received_at` is when the worker applied it.
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.INBOUND] = InteractionKind.INBOUND
    at: str
    received_at: str
    customer_id: str
    event: EventRecord

    @model_validator(mode="before")
    @classmethod
    def _received_at_of_older_records(cls, data: Any) -> Any:
        # Records written before `received_at` had `at` = when the worker applied the event.
        if isinstance(data, dict) and "received_at" not in data and "at" in data:
            return {**data, "received_at": data["at"]}
        return data


@dataclass(slots=True, kw_only=True)
class EnterInteraction(WireRecord):
    """A customer entered a journey (at `version`, as instance `instance_id`)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.ENTER] = InteractionKind.ENTER
    at: str
    customer_id: str
    journey: str
    version: int
    instance_id: str
    caused_by: str


@dataclass(slots=True, kw_only=True)
class StepInteraction(WireRecord):
    """An instance entered step `step` (every kind, loops included: one record per entry).

    `variant` only on a `split` step: the arm chosen; `holdout` True only when that arm is
    the split's holdout (the instance sends nothing and waits for a goal, exit or expiry).
    """

    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"variant", "holdout"})

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.STEP] = InteractionKind.STEP
    at: str
    customer_id: str
    journey: str
    version: int
    step: str
    instance_id: str
    caused_by: str
    variant: str | None = None
    holdout: bool | None = None


@dataclass(slots=True, kw_only=True)
class SendInteraction(WireRecord):
    """A message went to `outbound` (its `message_id` is the outbound message's).

    `category` is the journey's (marketing or transactional); `consent` the customer's
    consent status for `channel` when the send was decided (opted_in or not_set: an
    opted-out channel is suppressed, never sent on); `survey` (nps or csat) when the step
    asks one, so a reply can be read as its answer. Records written before category and
    consent were recorded have neither: they read back as None (unknown), never guessed.
    """

    _omit_if_none: ClassVar[frozenset[str]] = frozenset(
        {"variant", "category", "consent", "survey"}
    )

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.SEND] = InteractionKind.SEND
    at: str
    customer_id: str
    journey: str
    step: str
    channel: str
    template: str
    variant: str | None = None
    category: str | None = None
    consent: str | None = None
    survey: str | None = None
    content: dict[str, Any]
    message_id: str
    version: int
    instance_id: str
    caused_by: str


@dataclass(slots=True, kw_only=True)
class SuppressInteraction(WireRecord):
    """A send that did not go out on `channel`, and why (consent, quiet hours, caps...)."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.SUPPRESS] = InteractionKind.SUPPRESS
    at: str
    customer_id: str
    journey: str
    step: str
    channel: str
    reason: str
    instance_id: str
    caused_by: str


@dataclass(slots=True, kw_only=True)
class ExitInteraction(WireRecord):
    """An instance ended: `reason` is goal, exit_event, completed, expired or archived."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.EXIT] = InteractionKind.EXIT
    at: str
    customer_id: str
    journey: str
    reason: str
    instance_id: str
    caused_by: str


@dataclass(slots=True, kw_only=True)
class ProfileInteraction(WireRecord):
    """An `update_profile` step merged `changes` into the profile."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.PROFILE] = InteractionKind.PROFILE
    at: str
    customer_id: str
    journey: str
    step: str
    changes: dict[str, Any]
    caused_by: str


@dataclass(slots=True, kw_only=True)
class ErrorInteraction(WireRecord):
    """Something failed: a condition or template at runtime (it counted as false, the send
    was skipped), or an outbound message the broker refused (`record_id`
    `undelivered:<message_id>`, with `instance_id`, `channel` and `message_id`)."""

    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"instance_id", "channel", "message_id"})

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.ERROR] = InteractionKind.ERROR
    at: str
    customer_id: str
    journey: str
    step: str | None
    expression: str | None
    error: str
    caused_by: str
    instance_id: str | None = None
    channel: str | None = None
    message_id: str | None = None


@dataclass(slots=True, kw_only=True)
class LateInteraction(WireRecord):
    """Event `event_id` arrived after the customer's journeys had moved past its time; it
    was applied `at` the customer's engine time instead."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.LATE] = InteractionKind.LATE
    at: str
    customer_id: str
    event_id: str
    occurred_at: str
    late_by_seconds: float
    caused_by: str


@dataclass(slots=True, kw_only=True)
class OperatorInteraction(WireRecord):
    """An operator action on a journey (keyed `journey:<id>`); `digest` is the current
    version's. `version` is the version acted on; `rolled_back_from` only for rollbacks."""

    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"rolled_back_from"})

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.OPERATOR] = InteractionKind.OPERATOR
    action: OperatorAction
    at: str
    operator: str
    journey: str
    status: JourneyStatus
    digest: str
    version: int
    rolled_back_from: int | None = None


@dataclass(slots=True, kw_only=True)
class KeyInteraction(WireRecord):
    """An API key created or revoked (keyed `key:<key_id>`); the secret is never recorded."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.OPERATOR] = InteractionKind.OPERATOR
    action: KeyAction
    at: str
    operator: str
    key_id: str
    key_name: str
    role: str


@dataclass(slots=True, kw_only=True)
class DataAccessInteraction(WireRecord):
    """Who read which parts of a customer's data (DESIGN invariant 5), keyed by customer."""

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.DATA_ACCESS] = InteractionKind.DATA_ACCESS
    at: str
    customer_id: str
    operator: str
    fields: list[str]


@dataclass(slots=True, kw_only=True)
class ProviderInteraction(WireRecord):
    """One provider request of a connector and its answer (one record per attempt).

    `provider_id` when delivered; `error_code`/`error` when failed or retried; `retry_after`
    (seconds) when the provider asked for a later retry; `reconciled` when nothing was sent
    because the provider already had the message from an earlier, unanswered try.
    """

    _omit_if_none: ClassVar[frozenset[str]] = frozenset(
        {"provider_id", "error_code", "error", "retry_after", "reconciled"}
    )

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.PROVIDER] = InteractionKind.PROVIDER
    at: str
    customer_id: str
    journey: str
    step: str
    instance_id: str
    channel: str
    message_id: str
    provider: str
    attempt: int
    outcome: ProviderOutcome
    provider_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    retry_after: float | None = None
    reconciled: bool | None = None


@dataclass(slots=True, kw_only=True)
class ErasureInteraction(WireRecord):
    """A customer was erased (right to erasure), keyed by customer: who did it and when.

    It carries no personal data, only the customer's id, so it stays readable after the
    erasure it records (the audit trail of the erasure survives the data it destroyed).
    """

    schema_version: SchemaVersion = SCHEMA_VERSION
    record_id: str
    type: Literal[InteractionKind.ERASURE] = InteractionKind.ERASURE
    at: str
    customer_id: str
    operator: str


def _kind(data: Any) -> str:
    """The union member a record is: its `type`, with key changes told apart by `action`."""
    if isinstance(data, dict):
        kind, action = data.get("type"), data.get("action")
    else:
        kind, action = getattr(data, "type", None), getattr(data, "action", None)
    if kind == InteractionKind.OPERATOR and isinstance(action, str) and action.startswith("key."):
        return "key"
    return str(kind)


InteractionRecord = Annotated[
    Annotated[InboundInteraction, Tag(InteractionKind.INBOUND.value)]
    | Annotated[EnterInteraction, Tag(InteractionKind.ENTER.value)]
    | Annotated[StepInteraction, Tag(InteractionKind.STEP.value)]
    | Annotated[SendInteraction, Tag(InteractionKind.SEND.value)]
    | Annotated[SuppressInteraction, Tag(InteractionKind.SUPPRESS.value)]
    | Annotated[ExitInteraction, Tag(InteractionKind.EXIT.value)]
    | Annotated[ProfileInteraction, Tag(InteractionKind.PROFILE.value)]
    | Annotated[ErrorInteraction, Tag(InteractionKind.ERROR.value)]
    | Annotated[LateInteraction, Tag(InteractionKind.LATE.value)]
    | Annotated[OperatorInteraction, Tag(InteractionKind.OPERATOR.value)]
    | Annotated[KeyInteraction, Tag("key")]
    | Annotated[DataAccessInteraction, Tag(InteractionKind.DATA_ACCESS.value)]
    | Annotated[ProviderInteraction, Tag(InteractionKind.PROVIDER.value)]
    | Annotated[ErasureInteraction, Tag(InteractionKind.ERASURE.value)],
    Discriminator(_kind),
]
"""Any record of the `interactions` topic."""

INTERACTION_RECORD: TypeAdapter[InteractionRecord] = TypeAdapter(InteractionRecord)
