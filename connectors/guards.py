"""The Redis-side guards of delivery, each one atomic script shared by every connector worker.

- `DeliveryMarks`: a claim (`SET NX` with a lease) before a message goes to its provider,
  then a mark that it went (or failed for good), so a redelivered message is sent once.
- `RateLimiter`: GCRA per provider, so all workers together stay under a provider's rate;
  a call that must wait is given a slot, kept for it.
- `CircuitBreaker`: per provider, closed -> open -> half-open with exactly one probe.

Times come from Redis's own clock (`TIME`), so workers with skewed clocks still agree.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from orchestrator import jsonwire
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["CircuitBreaker", "Claim", "DeliveryMarks", "RateLimiter"]

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"

# KEYS: the mark, the in-flight note. Returns {1, ''} claimed, {4, since_ms} claimed after
# an earlier try that may have reached the provider (its claim expired, or it timed out),
# {2, pttl} claimed by another delivery, {3, value} already delivered or failed for good.
_CLAIM = """
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  local since = redis.call('GET', KEYS[2])
  if since then return {4, since} end
  return {1, ''}
end
if string.sub(v, 1, 6) == 'claim:' then
  return {2, tostring(redis.call('PTTL', KEYS[1]))}
end
return {3, v}
"""

# KEYS: the mark, the in-flight note; ARGV: the claim's token, '1' to forget the note (the
# provider is known to have no message for it).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
end
return 0
"""

# The in-flight note keeps the time of the first try that may have reached the provider.
_SENDING = (
    _NOW_MS
    + """
redis.call('SET', KEYS[1], now, 'NX', 'EX', ARGV[1])
return redis.call('GET', KEYS[1])
"""
)

_FINISH = """
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('DEL', KEYS[2])
return 0
"""

# GCRA with reservation: ARGV interval_ms (1 / rate), tolerance_ms (interval * (burst - 1)).
# Every call is counted: it returns 0 when it may go now, else how many ms until the slot it
# was given (later callers get later slots, so waiting messages come back one by one rather
# than all at once to be turned away again).
_GCRA = (
    _NOW_MS
    + """
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', math.ceil(new_tat - now + interval))
if now < allow_at then return allow_at - now end
return 0
"""
)

# Returns {1, 0} go (closed), {2, 0} go as the one probe (half-open), {0, ms} wait that long.
_ALLOW = (
    _NOW_MS
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 0} end
if state == 'open' then
  local reopen = tonumber(redis.call('HGET', KEYS[1], 'open_until'))
  if now < reopen then return {0, reopen - now} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[1]))
  return {2, 0}
end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or 0)
if now < probe then return {0, probe - now} end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[1]))
return {2, 0}
"""
)

# ARGV: 'ok' or 'fail', threshold, open_ms. Returns the state after.
_RECORD = (
    _NOW_MS
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if ARGV[1] == 'ok' then
  if state ~= 'closed' or redis.call('HGET', KEYS[1], 'failures') then
    redis.call('DEL', KEYS[1])
  end
  return 'closed'
end
if state == 'open' then return 'open' end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'half_open' or failures >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', now + tonumber(ARGV[3]),
             'failures', 0)
  return 'open'
end
return state
"""
)


@dataclass(frozen=True, slots=True)
class Claim:
    """What `DeliveryMarks.claim` found: ours to send (under `token`), another delivery's
    for `wait` seconds more, or done (with its `mark`).

    `in_flight_since` (epoch seconds, claimed only): an earlier try that began then may have
    reached the provider (a worker died holding the claim, or the request timed out), so
    the provider is asked first when it can be (`connectors.base.Reconciler`).
    """

    status: Literal["claimed", "busy", "done"]
    token: str = ""
    wait: float = 0.0
    mark: dict[str, Any] | None = None
    in_flight_since: float | None = None


class DeliveryMarks:
    """Per-message claim and delivered mark (one key per message, see `RedisKeys`)."""

    def __init__(self, redis: RedisClient, keys: RedisKeys, lease: float, keep: float) -> None:
        self.redis = redis
        self.keys = keys
        self.lease_ms = int(lease * 1000)
        self.keep = int(keep)
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)
        self._sending = redis.register_script(_SENDING)
        self._finish = redis.register_script(_FINISH)

    def _keys(self, message_id: str) -> list[str]:
        return [self.keys.delivery_mark(message_id), self.keys.delivery_in_flight(message_id)]

    async def claim(self, message_id: str) -> Claim:
        """Claim a message for the lease, unless it is claimed or done.

        Each claim has its own token: the same message taken from `outbound` and from the
        retry schedule at once, even in one process, is sent by only one of them.
        """
        token = f"claim:{uuid.uuid4().hex}"
        status, detail = await self._claim(keys=self._keys(message_id), args=[token, self.lease_ms])
        if status == 1:
            return Claim("claimed", token)
        if status == 4:
            return Claim("claimed", token, in_flight_since=int(detail) / 1000)
        if status == 2:
            return Claim("busy", wait=max(int(detail), 0) / 1000)
        return Claim("done", mark=jsonwire.loads(detail))

    async def release(self, message_id: str, token: str, *, provider_has_none: bool) -> None:
        """Give up a claim (the message will be tried again later).

        `provider_has_none`: this try learned that the provider has no message for it (it
        refused the request, and any earlier try's was looked up and not found), so the
        in-flight note goes. Otherwise the note stays: a claim given up without asking the
        provider (a rate limit, an open circuit) or after a request that may have reached
        it must still make the next try look first.
        """
        forget = "1" if provider_has_none else "0"
        await self._release(keys=self._keys(message_id), args=[token, forget])

    async def sending(self, message_id: str) -> None:
        """Note that a request that may create the message is going to the provider: if
        its worker dies before the answer is marked, the next claim says since when."""
        await self._sending(keys=[self.keys.delivery_in_flight(message_id)], args=[self.keep])

    async def first(self, name: str) -> bool:
        """True for the first caller to name `name` (e.g. to dead-letter a record once)."""
        return bool(
            await self.redis.set(self.keys.delivery_mark(name), b"1", nx=True, ex=self.keep)
        )

    async def finish(self, message_id: str, mark: dict[str, Any]) -> None:
        """Mark a message delivered or failed for good (kept past `outbound`'s retention)."""
        await self._finish(keys=self._keys(message_id), args=[jsonwire.dumps(mark), self.keep])


class RateLimiter:
    """GCRA: `rate` calls a second on average, bursts of up to `rate` (one second's worth)."""

    def __init__(self, redis: RedisClient, keys: RedisKeys, rates: dict[str, float]) -> None:
        self.keys = keys
        self.rates = rates
        self._script = redis.register_script(_GCRA)

    async def reserve(self, provider: str) -> float:
        """0 if a call to `provider` may go now, else seconds until the slot reserved for it.

        Either way the call is counted: a caller told to wait must go at its slot without
        asking again (`RetrySchedule.put(..., reserved=True)`), or the provider's rate is spent
        twice on one message."""
        # `webhook:<host>` falls back to the `webhook` rate: each host gets that rate.
        rate = self.rates.get(provider) or self.rates.get(provider.partition(":")[0])
        if not rate:
            return 0.0
        interval = 1000.0 / rate
        tolerance = interval * max(rate - 1, 0)
        waiting = await self._script(
            keys=[self.keys.rate_limit(provider)], args=[interval, tolerance]
        )
        return float(waiting) / 1000


class CircuitBreaker:
    """Per provider: `failures` consecutive provider failures open the circuit for `open_for`
    seconds; then one probe goes (half-open): its success closes it, its failure reopens it."""

    def __init__(
        self, redis: RedisClient, keys: RedisKeys, failures: int, open_for: float, probe: float
    ) -> None:
        self.keys = keys
        self.failures = failures
        self.open_ms = int(open_for * 1000)
        self.probe_ms = int(probe * 1000)
        self._allow = redis.register_script(_ALLOW)
        self._record = redis.register_script(_RECORD)

    async def wait_for(self, provider: str) -> float:
        """0 if a call may go now (as the probe if half-open), else seconds to wait."""
        verdict, waiting = await self._allow(
            keys=[self.keys.circuit(provider)], args=[self.probe_ms]
        )
        return 0.0 if verdict else max(float(waiting), 1.0) / 1000

    async def record(self, provider: str, ok: bool) -> str:
        """Count a call's result; returns the state after it (closed, open, half_open)."""
        state = await self._record(
            keys=[self.keys.circuit(provider)],
            args=["ok" if ok else "fail", self.failures, self.open_ms],
        )
        return state.decode() if isinstance(state, bytes) else str(state)
