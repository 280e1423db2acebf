"""Publishing customer events to the `events` topic, keyed by customer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownProducerId,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from orchestrator.contracts.events import EventRecord
from orchestrator.engine.events import RESERVED_NAMES, Event
from orchestrator.infra.names import TopicNames
from orchestrator.infra.origin import EngineOrigin
from orchestrator.infra.producer import MAX_REQUEST_BYTES, idempotent_producer
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin

__all__ = ["MAX_REQUEST_BYTES", "EventPublisher", "PublishReport"]

log = logging.getLogger(__name__)

_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError, RecordTooLargeError)
_SEQUENCE_BROKEN = (OutOfOrderSequenceNumber, UnknownProducerId)


@dataclass(slots=True)
class PublishReport:
    """What `publish_lines` did: line numbers sent, and lines not sent with the reason."""

    sent: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)


class EventPublisher:
    """An idempotent, batching producer for events: `async with EventPublisher(s) as p: ...`.

    With an `origin` (a loaded `EngineOrigin`), the engine's own events it publishes
    (`journey.archived`) carry the proof of origin workers require of them.
    """

    def __init__(
        self, settings: Settings, origin: EngineOrigin | None = None, *, linger_ms: int = 20
    ) -> None:
        self.origin = origin
        # 20 ms fills batches for bulk publishing; the API, which answers per request once
        # Kafka has its events, passes less, since the linger is paid by every request.
        self.linger_ms = linger_ms
        self.topic = TopicNames(settings.topic_prefix).events
        self.bootstrap = settings.kafka_bootstrap
        self.producer = self._new_producer()
        # Largest record the broker takes on the topic; read from it by `publish_lines`.
        self.max_record_bytes: int | None = None
        self._pending: list[asyncio.Future[Any]] = []

    def _new_producer(self) -> AIOKafkaProducer:
        return idempotent_producer(self.bootstrap, linger_ms=self.linger_ms)

    async def __aenter__(self) -> EventPublisher:
        await start_kafka_client(self.producer.start, self.producer.stop, self.bootstrap)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.flush()
        finally:
            await self.producer.stop()

    async def _topic_limit(self) -> int:
        """The topic's `max.message.bytes` (the broker's default unless the topic sets one)."""
        try:
            async with kafka_admin(self.bootstrap) as admin:
                [response] = await admin.describe_configs(
                    [ConfigResource(ConfigResourceType.TOPIC, self.topic, None)]
                )
            for resource in response.resources:
                for entry in resource[4]:
                    if entry[0] == "max.message.bytes" and entry[1] is not None:
                        return int(entry[1])
        except (KafkaError, ValueError, IndexError) as exc:
            # Only a pre-check: the broker's refusal is still reported per line.
            log.debug("could not read %s's max.message.bytes: %s", self.topic, exc)
        return MAX_REQUEST_BYTES

    async def publish(self, events: Iterable[Event]) -> int:
        """Queue events; `flush()` (or leaving the context) waits until the broker has them."""
        count = 0
        for event in events:
            key, value = event.customer_id.encode(), EventRecord.of(event).to_json()
            headers = None
            if self.origin is not None and event.name in RESERVED_NAMES:
                headers = self.origin.sign(key, value)
            self._pending.append(
                await self.producer.send(self.topic, value, key=key, headers=headers)
            )
            count += 1
        return count

    async def publish_acked(self, events: Sequence[Event]) -> dict[int, str]:
        """Send `events` and wait until the broker has each; return index -> reason not sent.

        Only this call's records are awaited, so concurrent callers (API requests sharing
        one long-lived producer) do not wait for each other. An event too large for the
        producer is refused alone; any other failure (Kafka away) raises.
        """
        refused: dict[int, str] = {}
        sending: list[asyncio.Future[Any]] = []
        for index, event in enumerate(events):
            key, value = event.customer_id.encode(), EventRecord.of(event).to_json()
            try:
                sending.append(await self.producer.send(self.topic, value, key=key))
            except _TOO_LARGE as exc:
                refused[index] = f"the event is too large for topic {self.topic}: {exc}"
        if sending:
            await asyncio.gather(*sending)
        return refused

    async def publish_lines(self, numbered: Iterable[tuple[int, Event]]) -> PublishReport:
        """Send events read from numbered lines and wait for the broker; report each line.

        A record over the topic's size limit is not sent (the others still are); one the
        broker refuses anyway is reported with the broker's reason. Any other failure raises.
        """
        if self.max_record_bytes is None:
            self.max_record_bytes = min(MAX_REQUEST_BYTES, await self._topic_limit())
        limit = self.max_record_bytes
        report = PublishReport()
        todo: list[tuple[int, bytes, bytes]] = []
        for number, event in numbered:
            key = event.customer_id.encode()
            value = EventRecord.of(event).to_json()
            size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, [])
            if size > limit:
                report.refused[number] = (
                    f"the event is {size:,} bytes as a record, over the {limit:,}"
                    f"-byte limit of topic {self.topic}: make its properties smaller"
                )
            else:
                todo.append((number, key, value))
        fresh = False
        while todo:
            refused = len(report.refused)
            retry = await self._send_round(todo, report)
            if len(report.refused) > refused or retry:
                # A refused batch leaves the idempotent producer's sequence on its partition
                # broken: the broker rejects every later batch there as out of order (so
                # none was written). A new producer (new producer id) starts clean.
                await self._restart_producer()
            if fresh and len(retry) == len(todo):  # a new producer got nowhere either
                raise retry[0][1]
            todo, fresh = [item for item, _ in retry], True
        return report

    async def _send_round(
        self, todo: list[tuple[int, bytes, bytes]], report: PublishReport
    ) -> list[tuple[tuple[int, bytes, bytes], BaseException]]:
        """Send `todo`, record sent and refused lines; return those to send again."""
        sending: list[tuple[tuple[int, bytes, bytes], asyncio.Future[Any]]] = []
        for item in todo:
            number, key, value = item
            try:
                sending.append((item, await self.producer.send(self.topic, value, key=key)))
            except _TOO_LARGE as exc:
                report.refused[number] = f"the producer refused it: {exc}"
        results = await asyncio.gather(*(f for _, f in sending), return_exceptions=True)
        retry: list[tuple[tuple[int, bytes, bytes], BaseException]] = []
        for (item, _), result in zip(sending, results, strict=True):
            if isinstance(result, _TOO_LARGE):
                # The broker refuses a whole batch: every line in it is reported.
                report.refused[item[0]] = (
                    f"the broker refused the batch holding it as too large ({result}): "
                    f"check max.message.bytes of topic {self.topic}"
                )
            elif isinstance(result, _SEQUENCE_BROKEN):
                retry.append((item, result))
            elif isinstance(result, BaseException):
                raise result
            else:
                report.sent.append(item[0])
        report.sent.sort()
        return retry

    async def _restart_producer(self) -> None:
        await self.flush()
        await self.producer.stop()
        self.producer = self._new_producer()
        await start_kafka_client(self.producer.start, self.producer.stop, self.bootstrap)

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
