"""Publishing customer events to the `events` topic, keyed by customer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer

from orchestrator import jsonwire
from orchestrator.engine.events import RESERVED_NAMES, Event
from orchestrator.runtime.names import TopicNames
from orchestrator.runtime.origin import EngineOrigin
from orchestrator.runtime.settings import Settings

__all__ = ["EventPublisher"]


class EventPublisher:
    """An idempotent, batching producer for events: `async with EventPublisher(s) as p: ...`.

    With an `origin` (a loaded `EngineOrigin`), the engine's own events it publishes
    (`journey.archived`) carry the proof of origin workers require of them.
    """

    def __init__(self, settings: Settings, origin: EngineOrigin | None = None) -> None:
        self.origin = origin
        self.topic = TopicNames(settings.topic_prefix).events
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_idempotence=True,
            acks="all",
            linger_ms=20,
            max_batch_size=262144,
        )
        self._pending: list[asyncio.Future[Any]] = []

    async def __aenter__(self) -> EventPublisher:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.flush()
        finally:
            await self.producer.stop()

    async def publish(self, events: Iterable[Event]) -> int:
        """Queue events; `flush()` (or leaving the context) waits until the broker has them."""
        count = 0
        for event in events:
            key, value = event.customer_id.encode(), jsonwire.dumps(event.to_wire())
            headers = None
            if self.origin is not None and event.name in RESERVED_NAMES:
                headers = self.origin.sign(key, value)
            self._pending.append(
                await self.producer.send(self.topic, value, key=key, headers=headers)
            )
            count += 1
        return count

    async def publish_raw(
        self,
        value: bytes,
        key: bytes | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        """Queue bytes as they are (tests use it to send garbage and forgeries)."""
        self._pending.append(await self.producer.send(self.topic, value, key=key, headers=headers))

    async def flush(self) -> None:
        """Wait until every queued event is acknowledged."""
        pending, self._pending = self._pending, []
        if pending:
            await asyncio.gather(*pending)
