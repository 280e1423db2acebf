"""Per-customer in-app inboxes in Redis: what the in_app connector writes and the API reads.

Each inbox is a hash of messages by id (JSON: id, title, body, at, read, the journey and
step that sent it, and the survey it asks, if any) beside a sorted set of their ids by
arrival time, both under one hash tag so one script updates them together on Redis Cluster
too. An inbox keeps at most `limit` messages: adding one past that drops the oldest. Each new
message is also published on the customer's pub/sub channel, which the API's SSE streams
listen to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from orchestrator import jsonwire
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["Inbox", "InboxMessage"]

# Adds a message unless its id is already there (a redelivered `outbound` record must not
# show twice), then trims the oldest past the limit. Returns 1 if it was added.
_ADD = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
return 1
"""
# Sets `read` on one message in place; a script so a concurrent add's trim cannot resurrect
# a message this read-modify-write would otherwise write back after it was dropped.
_MARK_READ = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local message = cjson.decode(raw)
message['read'] = true
local updated = cjson.encode(message)
redis.call('HSET', KEYS[1], ARGV[1], updated)
return updated
"""


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """One in-app message as the inbox keeps and the API shows it."""

    id: str
    title: str
    body: str
    at: str
    read: bool = False
    journey: str | None = None
    step: str | None = None
    survey: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form kept in Redis and served by the API."""
        return {
            "id": self.id,
            "title": self.title,
            "body": self.body,
            "at": self.at,
            "read": self.read,
            "journey": self.journey,
            "step": self.step,
            "survey": self.survey,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InboxMessage:
        """Back from `to_dict`'s form."""
        return cls(
            id=str(data["id"]),
            title=str(data.get("title", "")),
            body=str(data.get("body", "")),
            at=str(data.get("at", "")),
            read=bool(data.get("read", False)),
            journey=data.get("journey"),
            step=data.get("step"),
            survey=data.get("survey"),
        )


class Inbox:
    """The inboxes of every customer, on one Redis client."""

    def __init__(self, redis: RedisClient, keys: RedisKeys, limit: int) -> None:
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self._add = redis.register_script(_ADD)
        self._mark_read = redis.register_script(_MARK_READ)

    async def add(self, customer_id: str, message: InboxMessage, score: float) -> bool:
        """Keep `message` (scored by arrival, seconds) and announce it; False if it was there.

        Announced only when new, so a redelivery does not notify connected clients twice.
        """
        added = await self._add(
            keys=[self.keys.inbox(customer_id), self.keys.inbox_order(customer_id)],
            args=[message.id, jsonwire.dumps(message.to_dict()), score, self.limit],
        )
        if int(added):
            await self.redis.publish(
                self.keys.inbox_channel(customer_id), jsonwire.dumps(message.to_dict())
            )
        return bool(int(added))

    async def list(self, customer_id: str, unread_only: bool = False) -> list[InboxMessage]:
        """The customer's messages, newest first."""
        ids = cast(
            list[bytes], await self.redis.zrevrange(self.keys.inbox_order(customer_id), 0, -1)
        )
        if not ids:
            return []
        raw = await self.redis.hmget(self.keys.inbox(customer_id), ids)
        messages = [InboxMessage.from_dict(jsonwire.loads(r)) for r in raw if r is not None]
        return [m for m in messages if not (unread_only and m.read)]

    async def get(self, customer_id: str, message_id: str) -> InboxMessage | None:
        """One message of the customer's inbox; None if there is no such message."""
        raw = await self.redis.hget(self.keys.inbox(customer_id), message_id)
        return None if raw is None else InboxMessage.from_dict(jsonwire.loads(raw))

    async def mark_read(self, customer_id: str, message_id: str) -> InboxMessage | None:
        """Mark one message read; None if the inbox has no such message."""
        updated = await self._mark_read(keys=[self.keys.inbox(customer_id)], args=[message_id])
        if updated is None:
            return None
        return InboxMessage.from_dict(jsonwire.loads(updated))
