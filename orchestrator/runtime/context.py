"""The journey worker's collaborators, bundled once and handed to each part that needs them.

Built by the worker from its settings; the processor, the store, the timer pump and the feed
read names and clients from it instead of deriving their own, and tests swap the producer,
Redis or the clock by building one with their own parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.infra.batching import Producer
from orchestrator.infra.clock import Clock, ScaledClock
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.origin import EngineOrigin
from orchestrator.infra.redisclient import RedisClient
from orchestrator.infra.settings import Settings

__all__ = ["WorkerContext"]


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """Settings, clients, clock, names and the engine's signing key of one worker.

    `origin` signs timer firings and verifies engine events; the worker loads its key from
    Redis at start-up, before anything signs or verifies.
    """

    settings: Settings
    producer: Producer
    redis: RedisClient
    clock: Clock
    topics: TopicNames
    keys: RedisKeys
    origin: EngineOrigin

    @classmethod
    def of(
        cls,
        settings: Settings,
        *,
        producer: Producer,
        redis: RedisClient,
        clock: Clock | None = None,
        origin: EngineOrigin | None = None,
    ) -> WorkerContext:
        """A context whose names come from `settings`, with the settings' clock and key unless
        given."""
        return cls(
            settings=settings,
            producer=producer,
            redis=redis,
            clock=clock or ScaledClock(settings.clock_speed, settings.clock_origin),
            topics=TopicNames(settings.topic_prefix),
            keys=RedisKeys(settings.redis_prefix),
            origin=origin or EngineOrigin(settings.engine_key),
        )

    def timers_key(self, partition: int) -> str:
        """The sorted set of one `events` partition's timers: where the batch core adds
        and removes them and the pump fires them from."""
        return self.keys.timers(self.topics.events, partition)
