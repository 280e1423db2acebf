"""Counts the Redis clients and producers `JourneyOperations` opens (the real ones, counted)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from orchestrator.control import operations
from orchestrator.infra.producer import idempotent_producer
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings

__all__ = ["OpenedConnections"]


class OpenedConnections:
    """Records every Redis client and producer the operations module opens from now on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.redis: list[RedisClient] = []
        self.producers: list[AIOKafkaProducer] = []
        opened = self

        def counting_redis(settings: Settings) -> RedisClient:
            client = connect_redis(settings)
            opened.redis.append(client)
            return client

        def counting_producer(bootstrap: str, **options: Any) -> AIOKafkaProducer:
            producer = idempotent_producer(bootstrap, **options)
            opened.producers.append(producer)
            return producer

        monkeypatch.setattr(operations, "connect_redis", counting_redis)
        monkeypatch.setattr(operations, "idempotent_producer", counting_producer)
