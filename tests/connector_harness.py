"""Helpers for connector tests: settings, connector workers, outbound records."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import SecretStr

from connectors import ConnectorWorker
from connectors.runner import group_of
from connectors.schedule import RetrySchedule
from orchestrator import jsonwire
from orchestrator.contracts.outbound import OutboundMessage
from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.engine.actions import Sent
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin
from tests.runtime_harness import OrchestratorProcess, isolated_settings, redis_client

__all__ = [
    "ConnectorProcess",
    "caught_up",
    "connector_settings",
    "events_named",
    "outbound",
    "publish_outbound",
    "running_connectors",
    "running_twilio",
]

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "f" * 32
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def connector_settings(
    infrastructure: Settings, *, smtp_port: int = 25, twilio_base: str = "", **overrides: Any
) -> Settings:
    """Isolated settings with every channel configured and fast retries."""
    settings = isolated_settings(infrastructure)
    values: dict[str, Any] = {
        "connector_group": f"{settings.group_id}-connectors",
        "public_url": "https://orchestrator.example",
        "smtp_port": smtp_port,
        "smtp_from": "Northwind <hello@northwind.example>",
        "twilio_api_base": twilio_base or "http://127.0.0.1:9",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "twilio_from": "+15550000001",
        "twilio_whatsapp_from": "+15550000002",
        "webhook_secret": SecretStr(WEBHOOK_SECRET),
        "connector_timeout_s": 2.0,
        "connector_poll_ms": 50,
        "connector_retry_base_s": 0.1,
        "connector_retry_cap_s": 0.5,
        "connector_breaker_open_s": 1.0,
        "connector_breaker_failures": 3,
    }
    values.update(overrides)
    return settings.model_copy(update=values)


def events_named(values: list[Any], name: str, customer: str) -> list[dict[str, Any]]:
    """The events named `name` of `customer` among values read from `events`."""
    return [
        v
        for v in values
        if isinstance(v, dict) and v.get("name") == name and v.get("customer_id") == customer
    ]


def outbound(
    customer: str, channel: str, to: str | None, content: dict[str, Any], step: str = "hello"
) -> dict[str, Any]:
    """An `outbound` record exactly as the journey worker builds it."""
    sent = Sent(
        at=time.time(),
        customer_id=customer,
        journey="test-journey",
        version=1,
        instance_id=uuid.uuid4().hex[:12],
        step=step,
        channel=channel,
        template="t",
        variant=None,
        content=content,
        to=to,
        message_id=uuid.uuid4().hex,
        category="transactional",
        consent="not_set",
    )
    return OutboundMessage.of(sent, f"event-{uuid.uuid4().hex[:8]}").to_dict()


async def publish_outbound(settings: Settings, messages: list[dict[str, Any]]) -> None:
    """Produce records to `outbound`, keyed by customer, and wait for the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        topic = TopicNames(settings.topic_prefix).outbound
        for message in messages:
            await producer.send(topic, jsonwire.dumps(message), key=message["customer_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()


async def caught_up(settings: Settings, channel: str) -> bool:
    """True when the channel's consumer group has committed every `outbound` record."""
    topic = TopicNames(settings.topic_prefix).outbound
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = await probe.end_offsets(partitions)
        async with kafka_admin(settings.kafka_bootstrap) as admin:
            committed = await admin.list_consumer_group_offsets(group_of(settings, channel))
    finally:
        await probe.stop()
    return all(end <= (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


async def nothing_waits(settings: Settings, channel: str) -> bool:
    """True when the channel's group is caught up and its retry schedule is empty: every
    message went out or failed for good (none waits for a retry or an expired claim)."""
    async with redis_client(settings) as redis:
        schedule = RetrySchedule(redis, RedisKeys(settings.redis_prefix), channel)
        return await schedule.size() == 0 and await caught_up(settings, channel)


@contextlib.asynccontextmanager
async def running_connectors(
    settings: Settings, channels: list[str]
) -> AsyncIterator[ConnectorWorker]:
    """An in-process connector worker running in a task for the duration of the block."""
    worker = ConnectorWorker(settings, channels)
    async with worker:
        task = asyncio.create_task(worker.run())
        try:
            yield worker
        finally:
            worker.stop()
            await asyncio.wait_for(task, timeout=30)


class ConnectorProcess(OrchestratorProcess):
    """`orchestrator connectors --channels CHANNELS` in a subprocess."""

    def __init__(self, settings: Settings, channels: str, log_path: Path) -> None:
        super().__init__(settings, log_path, "connectors", "--channels", channels)


@contextlib.asynccontextmanager
async def running_twilio() -> AsyncIterator[TwilioStandIn]:
    """A Twilio stand-in for this harness's account, serving on a free port for the block."""
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()
