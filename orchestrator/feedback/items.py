"""Which events carry feedback, the text they carry, and the records routing makes of them.

Sources (the `events` topic's record, `properties` as below; docs/feedback.md):

- `survey.answered`: `comment` (the free text), `survey`, `score`;
- `message.replied`: `text` (an SMS, WhatsApp or email reply, `control/inbound.py`), with
  the `journey` it answers; STOP/START/HELP keywords and bare numbers (a survey score sent
  by text) are not feedback;
- `support.note`: `text`, `ticket_id`, `author`;
- `app.review`: `text`, `title`, `rating` (1 to 5), `store`.

Each may carry `locale` and `journey`; items without text are not feedback.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlencode

from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.feedback import FeedbackRecord
from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.control.inbound import MESSAGE_REPLIED, keyword_of
from orchestrator.journey.routing import FeedbackText, Route, RoutingTable

__all__ = [
    "SOURCES",
    "feedback_of",
    "item_id_of",
    "notifications",
    "rerouted_id_of",
    "routed_record",
]

# Event name -> the property holding the free text.
SOURCES: dict[str, str] = {
    "survey.answered": "comment",
    MESSAGE_REPLIED: "text",
    "support.note": "text",
    "app.review": "text",
}
_OWN_FIELDS = ("title", "locale", "journey", "channel")
# The outbound `journey` of a team's webhook and email notifications.
NOTIFICATION_JOURNEY = "feedback"


def feedback_of(event: EventRecord, profile: dict[str, Any] | None = None) -> FeedbackText | None:
    """The feedback an event carries, or None when it carries none."""
    field_name = SOURCES.get(event.name)
    if field_name is None:
        return None
    properties = event.properties
    text = properties.get(field_name)
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    if event.name == MESSAGE_REPLIED and (keyword_of(text) is not None or text.isdigit()):
        return None
    title = properties.get("title")
    if event.name == "app.review" and isinstance(title, str) and title.strip():
        text = f"{title.strip()}: {text}"
    # What the item's own fields already say is left out of its properties.
    extra = {k: v for k, v in properties.items() if k not in (field_name, *_OWN_FIELDS)}
    profile = profile or {}
    locale = properties.get("locale") or profile.get("locale")
    journey = properties.get("journey")
    return FeedbackText(
        text=text,
        source=event.name,
        customer_id=event.customer_id,
        channel=event.channel or _str(properties.get("channel")),
        locale=_str(locale),
        journey=_str(journey),
        properties=extra,
        profile=profile,
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _digest(*parts: str) -> str:
    return "fb_" + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def item_id_of(customer_id: str, event_id: str) -> str:
    """The item's id: the same for every delivery of one event (event ids are unique per
    customer), so a redelivered event makes the very same record."""
    return _digest(customer_id, event_id)


def rerouted_id_of(item_id: str, rules_digest: str) -> str:
    """A rerouted item's id: one per (item, rules), so a repeated reroute makes nothing new."""
    return _digest(item_id, rules_digest)


def timeline_url_of(public_url: str, customer_id: str) -> str:
    """The customer's records, newest first, where the team can read them: an operator's key
    may (personal fields masked without the `pii` grant), unlike the auditor's timeline."""
    query = urlencode({"customer": customer_id, "order": "newest"})
    return f"{public_url.rstrip('/')}/v1/audit/records?{query}"


def routed_record(
    event: EventRecord,
    item: FeedbackText,
    route: Route,
    table: RoutingTable,
    public_url: str,
    *,
    rerouted: bool = False,
) -> FeedbackRecord:
    """The record for the team's topic (deterministic: the same inputs give the same bytes)."""
    original = item_id_of(event.customer_id, event.event_id)
    return FeedbackRecord(
        item_id=rerouted_id_of(original, table.digest) if rerouted else original,
        event_id=event.event_id,
        customer_id=event.customer_id,
        at=event.occurred_at,
        source=item.source,
        channel=item.channel,
        locale=item.locale,
        journey=item.journey,
        text=item.text,
        team=route.team,
        rule=route.rule,
        keyword=route.keyword,
        theme=route.theme,
        rules=table.name,
        rules_digest=table.digest,
        timeline_url=timeline_url_of(public_url, event.customer_id),
        rerouted=rerouted,
        original_item_id=original if rerouted else None,
        properties=item.properties,
    )


def notifications(record: FeedbackRecord, table: RoutingTable) -> list[OutboundMessage]:
    """The team's webhook and email messages for the `outbound` topic (connectors deliver
    them, with their retries; the message ids derive from the item id, so a message produced
    twice is delivered once)."""
    target = table.teams.get(record.team)
    if target is None:
        return []
    messages: list[OutboundMessage] = []
    if target.webhook:
        content: dict[str, Any] = {"url": target.webhook, "payload": record.to_dict()}
        messages.append(_message(record, "webhook", None, content))
    if target.email:
        subject = f"[{record.team}] {record.source} from {record.customer_id}: {record.theme}"
        body = (
            f"{record.text}\n\nsource: {record.source} ({record.channel or '-'}), "
            f"locale: {record.locale or '-'}, rule: {record.rule or 'none (triage)'}\n"
            f"timeline: {record.timeline_url}\n"
        )
        if record.rerouted:
            body += "rerouted to this team after a change of the routing rules\n"
        messages.append(_message(record, "email", target.email, {"subject": subject, "body": body}))
    return messages


def _message(
    record: FeedbackRecord, channel: str, to: str | None, content: dict[str, Any]
) -> OutboundMessage:
    return OutboundMessage(
        message_id=f"{record.item_id}:{channel}",
        at=record.at,
        customer_id=record.customer_id,
        journey=NOTIFICATION_JOURNEY,
        version=1,
        instance_id=record.item_id,
        step=record.team,
        channel=channel,
        to=to,
        template=f"feedback.{record.team}",
        variant=None,
        category="transactional",
        content=content,
        caused_by=record.event_id,
    )
