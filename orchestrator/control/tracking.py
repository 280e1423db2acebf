"""Opens and clicks as events: what the API's tracking routes publish for a signed token.

Event ids derive from the message (and the link's index), so the first open of a message and
the first click of each of its links become events and every repeat is the same event again,
which the journey workers apply once: the receipts count unique opens and clicks.
"""

from __future__ import annotations

from typing import Any

from orchestrator.engine.events import Event
from orchestrator.infra.tracking import Tracked

__all__ = ["MESSAGE_CLICKED", "MESSAGE_OPENED", "clicked_event", "opened_event"]

MESSAGE_OPENED = "message.opened"
MESSAGE_CLICKED = "message.clicked"


def _receipt(name: str, event_id: str, tracked: Tracked, at: float, **more: Any) -> Event:
    return Event(
        event_id=event_id,
        customer_id=tracked.customer_id,
        name=name,
        occurred_at=at,
        channel=tracked.channel,
        properties={
            "message_id": tracked.message_id,
            "journey": tracked.journey,
            "step": tracked.step,
            "instance_id": tracked.instance_id,
            "channel": tracked.channel,
            **more,
        },
    )


def opened_event(tracked: Tracked, at: float) -> Event:
    """`message.opened`: the message's open pixel was fetched."""
    return _receipt(MESSAGE_OPENED, f"{MESSAGE_OPENED}:{tracked.message_id}", tracked, at)


def clicked_event(tracked: Tracked, at: float) -> Event:
    """`message.clicked`: one of the message's tracked links was followed."""
    event_id = f"{MESSAGE_CLICKED}:{tracked.message_id}:{tracked.link}"
    return _receipt(MESSAGE_CLICKED, event_id, tracked, at, url=tracked.url, link=tracked.link)
