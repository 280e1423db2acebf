"""The durable retry schedule: per channel, messages waiting to be tried again, in Redis.

A message that cannot go now (a transient failure, an open circuit, a rate limit, another
worker's claim) is not slept on: it is written here and its `outbound` offset is committed,
so the channel's other messages keep flowing and a restart forgets nothing. Two keys per
channel, in one hash slot: a sorted set of message ids scored by due time (epoch seconds),
and a hash of id -> {"message": <the outbound record>, "attempt": <tries so far>, "reserved":
<true when the rate limiter reserved the due time for it>}.

`take` leases what is due: it moves each entry's score `lease` seconds ahead instead of
removing it, so an entry taken by a worker that dies comes due again after the lease; the
worker that finishes it calls `remove` (or `put` for another try).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orchestrator import jsonwire
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["RetrySchedule", "Scheduled"]

_PUT = """
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 0
"""

_TAKE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  local body = redis.call('HGET', KEYS[2], id)
  if body then
    table.insert(out, body)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

_REMOVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
"""


@dataclass(frozen=True, slots=True)
class Scheduled:
    """A message taken from the schedule, with how many times it was tried already, and
    whether the rate limiter reserved its due time for it (then it goes without asking)."""

    message: dict[str, Any]
    attempt: int
    reserved: bool = False


class RetrySchedule:
    """One channel's schedule (see the module docstring)."""

    def __init__(self, redis: RedisClient, keys: RedisKeys, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self.due_key = keys.retry_due(channel)
        self.messages_key = keys.retry_messages(channel)
        self._put = redis.register_script(_PUT)
        self._take = redis.register_script(_TAKE)
        self._remove = redis.register_script(_REMOVE)

    async def put(
        self, message: dict[str, Any], attempt: int, due: float, *, reserved: bool = False
    ) -> None:
        """Schedule `message` (tried `attempt` times so far) for `due` (replaces any entry);
        `reserved`: the rate limiter reserved `due` for it."""
        body = jsonwire.dumps({"message": message, "attempt": attempt, "reserved": reserved})
        await self._put(
            keys=[self.due_key, self.messages_key], args=[message["message_id"], due, body]
        )

    async def take(self, now: float, limit: int, lease: float) -> list[Scheduled]:
        """Lease up to `limit` entries due by `now` for `lease` seconds."""
        bodies = await self._take(
            keys=[self.due_key, self.messages_key], args=[now, limit, now + lease]
        )
        taken = [jsonwire.loads(body) for body in bodies]
        return [
            Scheduled(entry["message"], int(entry["attempt"]), bool(entry.get("reserved")))
            for entry in taken
        ]

    async def remove(self, message_id: str) -> None:
        """Drop a message from the schedule (delivered, failed for good, or found done)."""
        await self._remove(keys=[self.due_key, self.messages_key], args=[message_id])

    async def size(self) -> int:
        """How many messages wait (due or not)."""
        return int(await self.redis.zcard(self.due_key))
