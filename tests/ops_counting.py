"""Counts the Redis clients, producers and deploy-log readers `JourneyOperations` opens (the
real ones, counted)."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from orchestrator.control import connections
from orchestrator.infra.deploylog import CatalogFollower
from orchestrator.infra.producer import idempotent_producer
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings

__all__ = ["OpenedConnections"]


class OpenedConnections:
    """Records every Redis client, producer and deploy-log reader the operations' shared
    connections open from now on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.redis: list[RedisClient] = []
        self.producers: list[AIOKafkaProducer] = []
        self.readers: list[CatalogFollower] = []
        opened = self

        def counting_redis(settings: Settings) -> RedisClient:
            client = connect_redis(settings)
            opened.redis.append(client)
            return client

        def counting_producer(bootstrap: str, **options: Any) -> AIOKafkaProducer:
            producer = idempotent_producer(bootstrap, **options)
            opened.producers.append(producer)
            return producer

        def counting_reader(bootstrap: str, topic: str) -> CatalogFollower:
            reader = CatalogFollower(bootstrap, topic)
            opened.readers.append(reader)
            return reader

        monkeypatch.setattr(connections, "connect_redis", counting_redis)
        monkeypatch.setattr(connections, "idempotent_producer", counting_producer)
        monkeypatch.setattr(connections, "CatalogFollower", counting_reader)
