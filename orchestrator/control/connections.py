"""The connections an operations session shares between calls, each opened on first use.

`JourneyOperations` used in `async with` (a long-lived process such as the HTTP API) keeps one
of these: a Redis client, a producer of deploy records, and a reader of the deploy log that
reads on from where it stopped instead of replaying the log at every call.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from orchestrator.infra.deploylog import CatalogFollower, JourneyRecords
from orchestrator.infra.names import TopicNames
from orchestrator.infra.producer import idempotent_producer
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings

__all__ = ["DEPLOY_RECORD_MAX_BYTES", "SharedConnections"]

# One deploy record holds every version of a journey (the compacted log keeps only the last).
DEPLOY_RECORD_MAX_BYTES = 16 * 1024 * 1024
# How long reading the deploy log to its end may take before the call fails.
_READ_SECONDS = 30.0


class SharedConnections:
    """A Redis client and a deploy-log producer, each opened on first use, closed together.

    Lazy so that a command needing only one of them (`live_stats`: Redis) does not depend
    on the other being up.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._redis: RedisClient | None = None
        self._producer: AIOKafkaProducer | None = None
        self._log: CatalogFollower | None = None
        self.journeys_topic = TopicNames(settings.topic_prefix).journeys
        # Two concurrent first calls (the API's requests) must not start two producers.
        self._starting = asyncio.Lock()
        # One reader of the deploy log, read by one call at a time.
        self._reading = asyncio.Lock()

    def redis(self) -> RedisClient:
        """The Redis client (connects on its first command)."""
        if self._redis is None:
            self._redis = connect_redis(self.settings)
        return self._redis

    async def producer(self) -> AIOKafkaProducer:
        """The started producer of deploy records and their audit records."""
        async with self._starting:
            if self._producer is None:
                producer = idempotent_producer(
                    self.settings.kafka_bootstrap, max_request_size=DEPLOY_RECORD_MAX_BYTES
                )
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def deploy_records(self) -> JourneyRecords:
        """The deploy log's current records: replayed on first use, then read on from where
        the last call stopped (so a long-lived session pays for new records only)."""
        async with self._reading:
            if self._log is None:
                log = CatalogFollower(self.settings.kafka_bootstrap, self.journeys_topic)
                try:
                    await asyncio.wait_for(log.start(), timeout=_READ_SECONDS)
                except BaseException:
                    await log.stop()
                    raise
                self._log = log
            else:
                await asyncio.wait_for(self._log.catch_up(), timeout=_READ_SECONDS)
            return dict(self._log.records)

    async def close(self) -> None:
        """Stop the producer, the deploy-log reader and the Redis client, whichever opened."""
        producer, redis, log = self._producer, self._redis, self._log
        self._producer = self._redis = self._log = None
        try:
            if producer is not None:
                await producer.stop()
            if log is not None:
                await log.stop()
        finally:
            if redis is not None:
                await redis.aclose()
