"""`orchestrator feedback reroute --from --until`: route a past range again with the rules
as they are now.

The range is found by the `events` records' Kafka timestamps (`offsets_for_times`). Each
feedback item is routed with the current rules; when its team differs from the one it was
routed to, a new record marked `rerouted` (with the rules digest and the original item id)
goes to the new team's topic, with the new team's webhook and email notifications on
`outbound` in the same transaction (the team learns of it as of any new item). Its id
derives from (item, rules digest), and the view keeps a mark per id: a repeated reroute with
the same rules adds nothing, and its notifications' ids are the same, so they go once.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.feedback import FeedbackRecord
from orchestrator.control.feedbackview import FeedbackView
from orchestrator.feedback.items import notifications
from orchestrator.feedback.router import decode_event, ensure_team_topics, route_events
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.producer import transactional_producer
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import partitions_of
from orchestrator.journey.routing import RoutingTable

__all__ = ["RerouteSummary", "reroute"]

_FETCH_MS = 500


@dataclass(slots=True)
class RerouteSummary:
    """What a reroute read and did."""

    events: int = 0
    items: int = 0
    unchanged: int = 0
    already: int = 0
    rerouted: Counter[str] = field(default_factory=Counter)


async def reroute(
    settings: Settings, table: RoutingTable, since: float, until: float
) -> RerouteSummary:
    """Route the `events` records timestamped in [since, until) again with `table`, one
    fetched batch (and one transaction) at a time."""
    summary = RerouteSummary()
    redis = connect_redis(settings)
    view = FeedbackView(redis, RedisKeys(settings.redis_prefix), TopicNames(settings.topic_prefix))
    producer: AIOKafkaProducer | None = None
    try:
        async with contextlib.aclosing(_read_range(settings, since, until)) as chunks:
            async for events in chunks:
                summary.events += len(events)
                fresh = await _moved(events, table, settings, view, summary)
                if not fresh:
                    continue
                if producer is None:
                    producer = await _start_producer(settings, table, view)
                await _produce(producer, view.topics, [record for record, _ in fresh], table)
                # After the commit: a crash right here leaves records the view does not
                # count yet, and a repeated reroute produces them again with the same ids.
                for record, current in fresh:
                    if await view.record(record, settings.feedback_queue_max, current):
                        summary.rerouted[record.team] += 1
    finally:
        if producer is not None:
            await producer.stop()
        await redis.aclose()
    return summary


async def _moved(
    events: list[EventRecord],
    table: RoutingTable,
    settings: Settings,
    view: FeedbackView,
    summary: RerouteSummary,
) -> list[tuple[FeedbackRecord, str | None]]:
    """The rerouted records of items whose team changes, each with the team it leaves."""
    routed = await route_events(events, table, settings, view.redis, rerouted=True)
    summary.items += len(routed.records)
    fresh: list[tuple[FeedbackRecord, str | None]] = []
    for record in routed.records:
        current = await view.team_of(record.original_item_id or "")
        if await view.team_of(record.item_id) is not None:
            summary.already += 1
        elif current == record.team:
            summary.unchanged += 1
        else:
            fresh.append((record, current))
    return fresh


async def _start_producer(
    settings: Settings, table: RoutingTable, view: FeedbackView
) -> AIOKafkaProducer:
    await ensure_team_topics(settings, table)
    await view.register_teams(list(table.teams), table.triage)
    # One transactional id for reroutes: a second reroute running at once fences the first.
    producer = transactional_producer(
        settings.kafka_bootstrap, f"{settings.feedback_group}.reroute"
    )
    await producer.start()
    return producer


async def _produce(
    producer: AIOKafkaProducer,
    topics: TopicNames,
    records: list[FeedbackRecord],
    table: RoutingTable,
) -> None:
    async with producer.transaction():
        for record in records:
            key = record.customer_id.encode()
            await producer.send(topics.feedback(record.team), record.to_json(), key=key)
            for message in notifications(record, table):
                await producer.send(topics.outbound, message.to_json(), key=key)


async def _read_range(
    settings: Settings, since: float, until: float
) -> AsyncGenerator[list[EventRecord], None]:
    """The decodable events of the range, a fetched batch at a time."""
    topic = TopicNames(settings.topic_prefix).events
    partitions = [
        TopicPartition(topic, p) for p in await partitions_of(settings.kafka_bootstrap, topic)
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        starts = await consumer.offsets_for_times({tp: int(since * 1000) for tp in partitions})
        ends = await consumer.end_offsets(partitions)
        stop_ms = int(until * 1000)
        pending: dict[TopicPartition, int] = {}
        for tp in partitions:
            found = starts.get(tp)
            if found is not None and found.offset < ends[tp]:
                consumer.seek(tp, found.offset)
                pending[tp] = ends[tp]
        while pending:
            events: list[EventRecord] = []
            batches = await consumer.getmany(*pending, timeout_ms=_FETCH_MS)
            for tp, messages in batches.items():
                for message in messages:
                    if message.timestamp >= stop_ms:
                        pending.pop(tp, None)
                        break
                    if (event := decode_event(message.value)) is not None:
                        events.append(event)
            for tp in list(pending):
                if await consumer.position(tp) >= pending[tp]:
                    del pending[tp]
            if events:
                yield events
    finally:
        await consumer.stop()
