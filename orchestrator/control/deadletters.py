"""Listing dead letters and replaying their originals to `events` after a fix.

A dead letter keeps only a bounded excerpt of its original (`contracts/codec.py`), so a
replay fetches the original record from its source topic at the recorded partition and
offset, checks it against the recorded sha256, and judges it exactly as a worker would
(`decode_event`) before it sends anything: what a worker would dead-letter again is refused
and reported, never re-sent. Replaying twice is harmless: workers drop an `event_id` they
already applied.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator import jsonwire
from orchestrator.contracts.codec import DeadLetter, decode_event
from orchestrator.control.publisher import EventPublisher
from orchestrator.control.topicdump import TopicRecord, read_topic, resolve_topic
from orchestrator.engine.events import RESERVED_NAMES
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.origin import ORIGIN_HEADER, EngineOrigin
from orchestrator.infra.reach import start_kafka_client
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import partitions_of

__all__ = [
    "DeadLetterEntry",
    "Original",
    "OriginalFetcher",
    "ReplayReport",
    "list_deadletters",
    "parse_deadletter",
    "replay_deadletters",
]

# How long one fetch of an original waits for the broker before it asks again.
_FETCH_MS = 1000


@dataclass(frozen=True, slots=True)
class DeadLetterEntry:
    """One `deadletter` record: where it is, why, and where its original was."""

    partition: int
    offset: int
    reason: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None
    key: Any  # the original key as text, {"b64": ...} if not UTF-8, or None
    length: int | None
    sha256: str | None
    excerpt: str  # the start of the original: text, or "b64:..." for binary
    truncated: bool

    @property
    def source(self) -> str:
        """`topic[partition]@offset` of the original."""
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object (`deadletters list --json`)."""
        return {name: getattr(self, name) for name in self.__slots__}


def parse_deadletter(record: TopicRecord) -> DeadLetterEntry:
    """Decode one `deadletter` record (the one place that knows its shape).

    A record that is not a dead letter at all is listed with a reason saying so.
    """
    try:
        body = jsonwire.loads(record.value or b"")
    except jsonwire.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("source"), dict):
        return DeadLetterEntry(
            record.partition, record.offset, "not a dead letter record", None, None, None,
            None, None, None, "", False,
        )  # fmt: skip
    source = body["source"]
    excerpt = body.get("value")
    if excerpt is None and body.get("value_b64") is not None:
        excerpt = f"b64:{body['value_b64']}"
    return DeadLetterEntry(
        partition=record.partition,
        offset=record.offset,
        reason=str(body.get("reason", "")),
        source_topic=source.get("topic"),
        source_partition=source.get("partition"),
        source_offset=source.get("offset"),
        key=body.get("key"),
        length=body.get("original_length"),
        sha256=body.get("sha256"),
        excerpt=excerpt or "",
        truncated=bool(body.get("truncated")),
    )


async def list_deadletters(
    settings: Settings, reason: str | None = None
) -> AsyncGenerator[DeadLetterEntry, None]:
    """Every dead letter now on `deadletter`, in partition order, whose reason has `reason`."""
    topic = await resolve_topic(settings, "deadletter")
    records = read_topic(settings, topic)
    # Closing this generator early (a --limit) must close the consumer's too, in this loop.
    async with contextlib.aclosing(records):
        async for record in records:
            entry = parse_deadletter(record)
            if reason is None or reason.lower() in entry.reason.lower():
                yield entry


@dataclass(frozen=True, slots=True)
class Original:
    """The record a dead letter came from, as fetched from its source topic."""

    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


class OriginalFetcher:
    """Fetches dead letters' originals: `async with OriginalFetcher(s) as f: await f.fetch(e)`."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.kafka_bootstrap
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        self._partitions: dict[str, list[int]] = {}

    async def __aenter__(self) -> OriginalFetcher:
        await start_kafka_client(self.consumer.start, self.consumer.stop, self.bootstrap)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def fetch(self, entry: DeadLetterEntry) -> Original | str:
        """The verified original, or why there is none (gone, or not the same bytes)."""
        topic, partition, offset = entry.source_topic, entry.source_partition, entry.source_offset
        if topic is None or partition is None or offset is None:
            return "gone: it never reached a partition, so there is nothing to fetch"
        if topic not in self._partitions:
            self._partitions[topic] = await partitions_of(self.bootstrap, topic)
        if partition not in self._partitions[topic]:
            return f"gone: {topic} has no partition {partition} any more"
        tp = TopicPartition(topic, partition)
        self.consumer.assign([tp])
        first = (await self.consumer.beginning_offsets([tp]))[tp]
        end = (await self.consumer.end_offsets([tp]))[tp]
        if not first <= offset < end:
            return f"gone: {entry.source} is outside {first}..{end - 1} (retention)"
        self.consumer.seek(tp, offset)
        batch: list[Any] = []
        while not batch:
            batch = (await self.consumer.getmany(tp, timeout_ms=_FETCH_MS)).get(tp, [])
            if not batch and await self.consumer.position(tp) >= end:
                break  # only transaction markers were left: no record at this offset
        message = batch[0] if batch else None
        if message is None or message.offset != offset or message.value is None:
            return f"gone: {entry.source} no longer holds a record (compaction)"
        if hashlib.sha256(message.value).hexdigest() != entry.sha256:
            return (
                f"gone: the record at {entry.source} is not the dead-lettered one (its sha256 "
                "differs): the topic was recreated since"
            )
        headers = tuple((name, value) for name, value in message.headers or ())
        return Original(message.key, message.value, headers)


@dataclass(slots=True)
class ReplayReport:
    """What a replay did (or, with `dry_run`, would do) with each dead letter."""

    dry_run: bool
    replayed: list[DeadLetterEntry] = field(default_factory=list)
    refused: list[tuple[DeadLetterEntry, str]] = field(default_factory=list)
    gone: list[tuple[DeadLetterEntry, str]] = field(default_factory=list)
    repeated: int = 0  # dead letters naming an original already handled in this run


async def replay_deadletters(
    settings: Settings, reason: str | None = None, dry_run: bool = False
) -> ReplayReport:
    """Send the originals of the matching dead letters to `events` again, keyed as before.

    Each original is judged as a worker would judge it; one that would be dead-lettered
    again (still invalid, wrong key, an engine event without a valid proof of origin) is
    refused. Signed engine events keep their signature header; nothing else is copied.
    """
    events = await resolve_topic(settings, "events")
    report = ReplayReport(dry_run)
    seen: set[tuple[str | None, int | None, int | None]] = set()
    verifier = _Verifier(settings)
    async with OriginalFetcher(settings) as fetcher, EventPublisher(settings) as publisher:
        async for entry in list_deadletters(settings, reason):
            position = (entry.source_topic, entry.source_partition, entry.source_offset)
            if position in seen:  # dead letters are at-least-once: one may repeat
                report.repeated += 1
                continue
            seen.add(position)
            original = await fetcher.fetch(entry)
            if isinstance(original, str):
                report.gone.append((entry, original))
                continue
            problem, headers = await verifier.judge(events, original)
            if problem is not None:
                report.refused.append((entry, problem))
                continue
            if not dry_run:
                await publisher.publish_raw(original.value, key=original.key, headers=headers)
            report.replayed.append(entry)
    return report


class _Verifier:
    """Judges originals as a worker would; loads the engine key only if an engine event shows."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.origin: EngineOrigin | None = None

    async def judge(
        self, events: str, original: Original
    ) -> tuple[str | None, list[tuple[str, bytes]] | None]:
        """(why it would be dead-lettered again or None, the headers to send it with)."""
        engine_event = _event_name(original.value) in RESERVED_NAMES
        origin = await self._origin() if engine_event else None
        # Judged as if it were on `events` now: partition and offset only label a dead letter.
        verdict = decode_event(
            original.value, original.key, events, 0, 0, headers=original.headers, origin=origin
        )
        if isinstance(verdict, DeadLetter):
            return verdict.reason, None
        if engine_event:
            return None, [(n, v) for n, v in original.headers if n == ORIGIN_HEADER]
        return None, None

    async def _origin(self) -> EngineOrigin:
        if self.origin is None:
            origin = EngineOrigin(self.settings.engine_key)
            redis = connect_redis(self.settings)
            try:
                await origin.load(redis, RedisKeys(self.settings.redis_prefix))
            finally:
                await redis.aclose()
            self.origin = origin
        return self.origin


def _event_name(value: bytes) -> Any:
    try:
        data = jsonwire.loads(value)
    except jsonwire.JSONDecodeError:
        return None
    return data.get("name") if isinstance(data, dict) else None
