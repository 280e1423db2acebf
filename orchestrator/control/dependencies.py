"""A deployed journey's dependency map, live: which providers' circuits are open now, and how
many customers are held at which steps because their messages wait in a retry schedule.

The static map (channels, providers, templates, link hosts, single points of failure) comes
from the journey's definition (`orchestrator.journey.dependencies`). The live part reads what
the connectors keep in Redis: each provider's circuit breaker and each channel's durable retry
schedule (`connectors/schedule.py`: a hash of message id -> {"message", "attempt"}). A message
there has not reached the customer yet: an open circuit, a rate limit or a transient failure
holds it. Scanning the schedules costs one pass over the messages waiting, which is small
unless a provider is down, and then it is what the operator wants to know.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from orchestrator import jsonwire
from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.deploylog import compile_record
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient
from orchestrator.journey.dependencies import JourneyDependencies, journey_dependencies
from orchestrator.timefmt import format_instant

__all__ = ["HeldAtStep", "LiveDependencies", "live_dependencies"]

_SCAN_COUNT = 500


@dataclass(frozen=True, slots=True)
class HeldAtStep:
    """Messages of one step and channel waiting in the retry schedule, and for how many."""

    step: str
    channel: str
    provider: str
    customers: int
    messages: int


@dataclass(frozen=True, slots=True)
class LiveDependencies:
    """The dependency map with the circuits' states and the customers held now."""

    map: JourneyDependencies
    circuits: dict[str, dict[str, Any]]
    held: tuple[HeldAtStep, ...]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON for the API."""
        return {
            **self.map.to_json(),
            "circuits": self.circuits,
            "held": [
                {
                    "step": h.step,
                    "channel": h.channel,
                    "provider": h.provider,
                    "customers": h.customers,
                    "messages": h.messages,
                }
                for h in self.held
            ],
        }


async def live_dependencies(operations: JourneyOperations, journey: str) -> LiveDependencies | None:
    """The current version's dependency map with live circuits and held customers (None when
    the journey is not deployed)."""
    record = (await operations.deploy_records()).get(journey)
    if record is None:
        return None
    compiled = compile_record(record).versions[record.current]
    deps = journey_dependencies(compiled)
    providers = {
        channel: provider
        for send in deps.sends
        for channel, provider in zip(send.channels, send.providers, strict=True)
    }
    async with operations.redis_session() as redis:
        circuits = {p: await _circuit(redis, operations.keys, p) for p in deps.providers}
        held = await _held(redis, operations.keys, journey, providers)
    return LiveDependencies(map=deps, circuits=circuits, held=held)


async def _circuit(redis: RedisClient, keys: RedisKeys, provider: str) -> dict[str, Any]:
    raw = await redis.hgetall(keys.circuit(provider))
    fields = {_text(k): _text(v) for k, v in raw.items()}
    state = fields.get("state", "closed")
    circuit: dict[str, Any] = {"state": state}
    if state == "open" and fields.get("open_until"):
        circuit["open_until"] = format_instant(float(fields["open_until"]) / 1000)
    return circuit


async def _held(
    redis: RedisClient, keys: RedisKeys, journey: str, providers: dict[str, str]
) -> tuple[HeldAtStep, ...]:
    customers: dict[tuple[str, str], set[str]] = defaultdict(set)
    messages: dict[tuple[str, str], int] = defaultdict(int)
    for channel in providers:
        async for _, body in redis.hscan_iter(keys.retry_messages(channel), count=_SCAN_COUNT):
            message = jsonwire.loads(body)["message"]
            if message.get("journey") != journey:
                continue
            key = (str(message.get("step")), channel)
            customers[key].add(str(message.get("customer_id")))
            messages[key] += 1
    return tuple(
        HeldAtStep(step, channel, providers[channel], len(customers[(step, channel)]), count)
        for (step, channel), count in sorted(messages.items())
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
