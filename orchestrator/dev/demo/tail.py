"""Reading one topic from its beginning into a counting function, as it grows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator import jsonwire
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import partitions_of

__all__ = ["Tail"]


class Tail:
    """Reads one topic from the beginning into a counting function, remembering how far."""

    def __init__(self, settings: Settings, topic: str, count: Callable[[dict[str, Any]], None]):
        self.bootstrap = settings.kafka_bootstrap
        self.topic = topic
        self.count = count
        self.read: dict[int, int] = {}  # partition -> next offset

    async def run(self) -> None:
        """Count every record, until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            assigned = [
                TopicPartition(self.topic, p)
                for p in await partitions_of(self.bootstrap, self.topic)
            ]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, messages in batches.items():
                    for message in messages:
                        self.count(jsonwire.loads(message.value))
                    self.read[tp.partition] = messages[-1].offset + 1
        finally:
            await consumer.stop()

    async def catch_up(self, within: float) -> None:
        """Wait until everything written to the topic so far has been counted."""
        probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None)
        await probe.start()
        try:
            partitions = [
                TopicPartition(self.topic, p)
                for p in await partitions_of(self.bootstrap, self.topic)
            ]
            ends = await probe.end_offsets(partitions)
        finally:
            await probe.stop()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(self.read.get(tp.partition, 0) >= end for tp, end in ends.items()):
                return
            await asyncio.sleep(0.1)
