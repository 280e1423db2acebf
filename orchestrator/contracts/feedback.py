"""The `feedback.<team>` topics' record: one piece of free-text feedback routed to a team."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import TypeAdapter

from orchestrator.contracts.base import SCHEMA_VERSION, SchemaVersion, WireRecord

__all__ = ["FEEDBACK_RECORD", "FeedbackRecord"]


@dataclass(slots=True, kw_only=True)
class FeedbackRecord(WireRecord):
    """What a team receives: the text, where it came from, why it is theirs, and a link to
    the customer's timeline.

    `item_id` is deterministic (from the customer and the source `event_id`; for a reroute,
    from the original item and the rules digest): readers deduplicate on it. `rerouted`
    records come from `orchestrator feedback reroute`; `original_item_id` names the item
    they re-route. `rule` and `keyword` are None when no rule matched (the triage team).
    """

    _omit_if_none: ClassVar[frozenset[str]] = frozenset({"original_item_id"})

    schema_version: SchemaVersion = SCHEMA_VERSION
    item_id: str
    event_id: str
    customer_id: str
    at: str
    source: str
    channel: str | None
    locale: str | None
    journey: str | None
    text: str
    team: str
    rule: str | None
    keyword: str | None
    theme: str
    rules: str
    rules_digest: str
    timeline_url: str
    rerouted: bool = False
    original_item_id: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)


FEEDBACK_RECORD: TypeAdapter[FeedbackRecord] = TypeAdapter(FeedbackRecord)
