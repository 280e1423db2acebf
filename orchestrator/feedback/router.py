"""`orchestrator feedback`: route the free text on `events` to the owning teams, exactly once.

Consume-route-produce in Kafka transactions: per batch, the team records, the teams' webhook
and email messages (on `outbound`) and the consumer offsets commit together or not at all.
A router killed mid-batch leaves an open transaction; the next one with the same
transactional id (`<feedback_group>.<feedback_instance>`) aborts it when it starts, reads
again from the committed offsets and makes the very same records (deterministic item ids).
Readers of the team topics use `isolation_level=read_committed` and see each item once.
The Redis view is written inside the transaction, idempotently (a `seen` mark per item),
so a batch routed twice counts once there too. docs/feedback.md says why this, not the
journey workers' outbox protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import NewTopic

from orchestrator import jsonwire
from orchestrator.contracts.base import ContractError, validate
from orchestrator.contracts.events import EVENT_RECORD, EventRecord
from orchestrator.contracts.feedback import FeedbackRecord
from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.control.customers import read_customer
from orchestrator.control.feedbackview import FeedbackView
from orchestrator.feedback.items import SOURCES, feedback_of, notifications, routed_record
from orchestrator.feedback.metrics import RouterMetrics
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.producer import transactional_producer
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import ensure_topics, kafka_admin, wait_for_leaders
from orchestrator.journey.routing import RoutingTable

__all__ = ["FeedbackRouter", "RoutedBatch", "ensure_team_topics", "route_events"]

log = logging.getLogger(__name__)

_POLL_MS = 500
_LEADER_WAIT_SECONDS = 30.0


async def ensure_team_topics(settings: Settings, table: RoutingTable) -> None:
    """Create each team's `feedback.<team>` topic that does not exist yet."""
    names = TopicNames(settings.topic_prefix)
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(names.feedback(team), settings.partitions, settings.replication_factor)
            for team in table.teams
            if names.feedback(team) not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
    await wait_for_leaders(settings.kafka_bootstrap, missing, _LEADER_WAIT_SECONDS)


def decode_event(value: bytes | None) -> EventRecord | None:
    """The event a record holds, or None (the journey workers dead-letter bad records)."""
    if value is None:
        return None
    try:
        record: EventRecord = validate(EVENT_RECORD, jsonwire.loads(value), "events record")
    except (ContractError, jsonwire.JSONDecodeError):
        return None
    return record


class RoutedBatch:
    """What routing a batch of events made: team records and their notifications."""

    def __init__(self) -> None:
        self.records: list[FeedbackRecord] = []
        self.messages: list[OutboundMessage] = []
        self.skipped = 0


async def route_events(
    events: Sequence[EventRecord],
    table: RoutingTable,
    settings: Settings,
    redis: RedisClient,
    *,
    rerouted: bool = False,
) -> RoutedBatch:
    """Route each feedback event with `table` (reading customers' profiles from Redis)."""
    keys = RedisKeys(settings.redis_prefix)
    profiles: dict[str, dict[str, Any]] = {}
    batch = RoutedBatch()
    for event in events:
        if event.name not in SOURCES:
            batch.skipped += 1
            continue
        if event.customer_id not in profiles:
            state = await read_customer(redis, keys, event.customer_id)
            profiles[event.customer_id] = dict(state.profile) if state is not None else {}
        item = feedback_of(event, profiles[event.customer_id])
        if item is None:
            batch.skipped += 1
            continue
        record = routed_record(
            event, item, table.route(item), table, settings.public_url, rerouted=rerouted
        )
        batch.records.append(record)
        batch.messages.extend(notifications(record, table))
    return batch


class FeedbackRouter:
    """One router process: a consumer in the feedback group and a transactional producer."""

    def __init__(self, settings: Settings, table: RoutingTable) -> None:
        self.settings = settings
        self.table = table
        self.topics = TopicNames(settings.topic_prefix)
        self.redis = connect_redis(settings)
        self.view = FeedbackView(self.redis, RedisKeys(settings.redis_prefix), self.topics)
        self.metrics = RouterMetrics(settings.health_host, settings.feedback_metrics_port)
        self.consumer = AIOKafkaConsumer(
            self.topics.events,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.feedback_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=settings.session_timeout_ms,
        )
        self.producer = transactional_producer(
            settings.kafka_bootstrap, f"{settings.feedback_group}.{settings.feedback_instance}"
        )
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Create topics, announce the teams, start the clients and the metrics server."""
        await ensure_topics(self.settings)
        await ensure_team_topics(self.settings, self.table)
        await self.view.register_teams(list(self.table.teams), self.table.triage)
        # Starting the producer fences an earlier incarnation and aborts its open transaction
        # before this one reads the committed offsets.
        await self.producer.start()
        await self.consumer.start()
        await self.metrics.start()
        self.metrics.healthy = True
        log.info(
            "routing feedback from %s with rules %r (%s)",
            self.topics.events,
            self.table.name,
            self.table.digest[:12],
        )

    async def run(self) -> None:
        """Route batches until `stop()`."""
        while not self._stopping.is_set():
            batches = await self.consumer.getmany(
                timeout_ms=_POLL_MS, max_records=self.settings.batch_max
            )
            if batches:
                await self.route_batch(batches)

    def stop(self) -> None:
        """Ask `run` to return after the batch in hand."""
        self._stopping.set()

    async def route_batch(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]
    ) -> None:
        """Route one batch and commit its records, view updates and offsets together."""
        offsets = {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages}
        events = [
            event
            for messages in batches.values()
            for message in messages
            if (event := decode_event(message.value)) is not None
        ]
        routed = await route_events(events, self.table, self.settings, self.redis)
        routed.skipped += sum(len(m) for m in batches.values()) - len(events)
        async with self.producer.transaction():
            for record in routed.records:
                await self.producer.send(
                    self.topics.feedback(record.team),
                    record.to_json(),
                    key=record.customer_id.encode(),
                )
            for message in routed.messages:
                await self.producer.send(
                    self.topics.outbound, message.to_json(), key=message.customer_id.encode()
                )
            for record in routed.records:
                await self.view.record(record, self.settings.feedback_queue_max)
            await self.producer.send_offsets_to_transaction(offsets, self.settings.feedback_group)
        self._count(routed)

    def _count(self, routed: RoutedBatch) -> None:
        for record in routed.records:
            self.metrics.routed.labels(
                record.team, self.topics.feedback(record.team), record.source, "false"
            ).inc()
        for message in routed.messages:
            self.metrics.notifications.labels(message.step, message.channel).inc()
        self.metrics.skipped.inc(routed.skipped)

    async def close(self) -> None:
        """Stop the clients and the metrics server."""
        self.metrics.healthy = False
        await self.metrics.stop()
        await self.consumer.stop()
        await self.producer.stop()
        await self.redis.aclose()
