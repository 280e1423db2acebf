"""What the journey worker costs Redis: round trips, commands, bytes per active instance.

Round trips and commands are counted on the client side, in this process (the worker runs
in it): the shared Redis serves other clients too, so its server-wide counters
(`INFO commandstats`) are reported beside them as a cross-check, not as the figure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from redis.asyncio.connection import AbstractConnection

from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import RedisClient

__all__ = ["ClientCount", "bytes_per_instance", "commandstats", "counted"]


@dataclass
class ClientCount:
    """Round trips (packed sends: a whole pipeline is one) and commands sent."""

    round_trips: int = 0
    commands: int = 0


@contextmanager
def counted() -> Iterator[ClientCount]:
    """Count every Redis round trip and command this process sends inside the block."""
    count = ClientCount()
    send = AbstractConnection.send_packed_command
    # Every connection class with a packer of its own (`connect_redis` packs with hiredis).
    packers: dict[type[AbstractConnection], Callable[..., Any]] = {
        cls: vars(cls)["pack_command"]
        for cls in _classes(AbstractConnection)
        if "pack_command" in vars(cls)
    }

    async def counting_send(
        self: AbstractConnection, command: Any, check_health: bool = True
    ) -> None:
        count.round_trips += 1
        await send(self, command, check_health)

    def counting(pack: Callable[..., Any]) -> Callable[..., Any]:
        def counting_pack(self: AbstractConnection, *args: Any) -> Any:
            count.commands += 1
            return pack(self, *args)

        return counting_pack

    AbstractConnection.send_packed_command = counting_send  # type: ignore[method-assign]
    for cls, pack in packers.items():
        cls.pack_command = counting(pack)  # type: ignore[method-assign]
    try:
        yield count
    finally:
        AbstractConnection.send_packed_command = send  # type: ignore[method-assign]
        for cls, pack in packers.items():
            cls.pack_command = pack  # type: ignore[method-assign]


def _classes(root: type[Any]) -> list[type[AbstractConnection]]:
    """`root` and every subclass of it, however deep."""
    found: list[type[AbstractConnection]] = [root]
    for sub in root.__subclasses__():
        found.extend(_classes(sub))
    return found


async def commandstats(redis: RedisClient) -> dict[str, int]:
    """Server-wide calls per command so far."""
    info: dict[str, Any] = await redis.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


def commands_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls per command between two `commandstats` readings, busiest first."""
    delta = {name: calls - before.get(name, 0) for name, calls in after.items()}
    return dict(sorted(((n, c) for n, c in delta.items() if c > 0), key=lambda i: -i[1]))


async def bytes_per_instance(redis: RedisClient, keys: RedisKeys, sample: int) -> tuple[int, int]:
    """(bytes of customer state per active journey instance, active instances).

    MEMORY USAGE of up to `sample` customer keys, scaled to all of them, over the members
    of every journey's member set (an active instance is one member).
    """
    pattern = keys.customer("*")
    customers: list[bytes] = [k async for k in redis.scan_iter(match=pattern, count=1000)]
    if not customers:
        return 0, 0
    measured = customers[:sample]
    async with redis.pipeline(transaction=False) as pipe:
        for key in measured:
            pipe.memory_usage(key, samples=0)
        sizes = [int(s or 0) for s in await pipe.execute()]
    total = sum(sizes) * len(customers) / len(measured)
    instances = 0
    async for members in redis.scan_iter(match=keys.journey_members("*"), count=1000):
        instances += int(await redis.scard(members))
    return (round(total / instances) if instances else 0), instances
