"""Counts the Redis clients and producers `JourneyOperations` opens (the real ones, counted)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from orchestrator.control import operations
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

        class CountingProducer(AIOKafkaProducer):  # type: ignore[misc]
            def __init__(self, **options: Any) -> None:
                super().__init__(**options)
                opened.producers.append(self)

        monkeypatch.setattr(operations, "connect_redis", counting_redis)
        monkeypatch.setattr(operations, "AIOKafkaProducer", CountingProducer)
