"""The in_app channel: each message lands in the customer's inbox in Redis (`control.inbox`).

No third party is involved: the channel's "provider" is our own Redis, and the API serves the
inbox (`GET /v1/customers/{id}/inbox`) and streams new messages over Server-Sent Events.
"""

from __future__ import annotations

import time

from redis.exceptions import RedisError

from connectors.base import Delivered, OutboundMessage, Outcome, Retry
from orchestrator.control.inbox import Inbox, InboxMessage
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.journey.dependencies import provider_of

__all__ = ["InAppConnector"]


class InAppConnector:
    """Delivers `in_app` messages into per-customer inboxes (its own Redis connection)."""

    def __init__(self, settings: Settings) -> None:
        self.channel: str = "in_app"
        # Connects on first use: building the connector touches nothing.
        self.redis = connect_redis(settings)
        self.inbox = Inbox(
            self.redis, RedisKeys(settings.redis_prefix), settings.inbox_max_messages
        )

    def provider(self, message: OutboundMessage) -> str:
        """One provider, the inbox store: its circuit opens if Redis keeps failing."""
        return provider_of(self.channel, message.content)

    async def deliver(self, message: OutboundMessage) -> Outcome:
        """Add the message (its id is the outbound message id: a redelivery adds nothing)."""
        entry = InboxMessage(
            id=message.message_id,
            title=str(message.content.get("title", "")),
            body=str(message.content.get("body", "")),
            at=message.at,
            journey=message.journey,
            step=message.step,
            survey=message.survey,
        )
        try:
            await self.inbox.add(message.customer_id, entry, time.time())
        except (RedisError, OSError) as exc:
            return Retry("inbox_unavailable", f"{type(exc).__name__}: {exc}")
        return Delivered(message.message_id)

    async def aclose(self) -> None:
        """Close the Redis connection."""
        await self.redis.aclose()
