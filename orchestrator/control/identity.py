"""The identity index: addresses back to customers, and provider ids back to messages.

Replies find their customer here. A provider's inbound webhook names only an address (an SMS
from `+15551234567`, a WhatsApp message from `whatsapp:+15551234567`) and its status
callbacks only its own id (Twilio's `MessageSid`). The connectors know both sides when they
deliver (`to`, customer, journey, step, and the provider's id), so they write them here, and
the API's webhooks read them:

- `address(addr)`: hash `customer_id`, and the last message sent to that address
  (`message_id`, `journey`, `step`, `channel`, `at`), so a reply is correlated with what it
  answers. Addresses are normalised: phones as E.164 without a `whatsapp:` prefix (a customer
  has one number whatever the channel), emails lower-cased, push tokens as `push:<token>`.
- `provider_message(id)`: hash of the message a provider id stands for (customer, journey,
  step, channel, instance), kept as long as delivery marks, so a late status callback still
  finds its message.

The address's `survey` (empty unless the last message asks one) makes a reply that starts
with a score that survey's answer too (`control/inbound.py`).

One key per address or id, each written with one command, so it works on Redis Cluster. The
key layout and the writes the journey worker shares (it keeps the index current from profile
updates) are in `infra/addresses.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.infra.addresses import channel_address, normalise_address
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["IdentityIndex", "KnownAddress", "SentMessage"]

# As long as delivery marks: a status callback or a reply may come days after the send.
_KEEP_SECONDS = 8 * 24 * 3600


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the connectors delivered, as a receipt or a reply needs it."""

    message_id: str
    customer_id: str
    journey: str
    step: str
    channel: str
    instance_id: str = ""
    survey: str = ""


@dataclass(frozen=True, slots=True)
class KnownAddress:
    """An address's customer and the last message sent to it (None if none recorded)."""

    customer_id: str
    last: SentMessage | None


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


class IdentityIndex:
    """Reads and writes the index on one Redis client."""

    def __init__(self, redis: RedisClient, keys: RedisKeys) -> None:
        self.redis = redis
        self.keys = keys

    async def remember(self, message: OutboundMessage, provider_id: str, at: str) -> None:
        """After a delivery: the address's customer and last message, and the provider id.

        Called before the delivery is marked done, so a crash in between writes it again on
        the redelivery (both writes are idempotent).
        """
        # redis-py's mapping type is invariant in its keys: Any spares a cast per call.
        fields: dict[Any, Any] = {
            "message_id": message.message_id,
            "customer_id": message.customer_id,
            "journey": message.journey,
            "step": message.step,
            "channel": message.channel,
            "instance_id": message.instance_id,
        }
        address = channel_address(message.channel, message.to) if message.to else None
        if address:
            # `survey` is written empty too: the next message must not inherit the last's.
            last = {**fields, "at": at, "survey": message.survey or ""}
            await self.redis.hset(self.keys.address(address), mapping=last)
        if provider_id:
            key = self.keys.provider_message(provider_id)
            await self.redis.hset(key, mapping=fields)
            await self.redis.expire(key, _KEEP_SECONDS)

    async def customer_of(self, address: str) -> KnownAddress | None:
        """The customer an address belongs to and its last message, or None if unknown."""
        raw = await self.redis.hgetall(self.keys.address(normalise_address(address)))
        data = {_text(k): _text(v) for k, v in raw.items()}
        if not data.get("customer_id"):
            return None
        last = None
        if data.get("message_id"):
            last = SentMessage(
                message_id=data["message_id"],
                customer_id=data["customer_id"],
                journey=data.get("journey", ""),
                step=data.get("step", ""),
                channel=data.get("channel", ""),
                instance_id=data.get("instance_id", ""),
                survey=data.get("survey", ""),
            )
        return KnownAddress(data["customer_id"], last)

    async def message_of(self, provider_id: str) -> SentMessage | None:
        """The message a provider id stands for, or None if it is not ours (or expired)."""
        raw = await self.redis.hgetall(self.keys.provider_message(provider_id))
        data = {_text(k): _text(v) for k, v in raw.items()}
        if not data.get("message_id"):
            return None
        return SentMessage(
            message_id=data["message_id"],
            customer_id=data["customer_id"],
            journey=data.get("journey", ""),
            step=data.get("step", ""),
            channel=data.get("channel", ""),
            instance_id=data.get("instance_id", ""),
        )
