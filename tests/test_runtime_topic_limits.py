"""An output topic whose `max.message.bytes` is below the producer's 1 MiB: the worker keeps
its batches under the limit, dead-letters the records too large for it, and, when the limit
is lowered while it runs, renews its producer instead of restarting (docs/operations.md §9)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topiclimits import TopicLimits
from orchestrator.infra.topics import kafka_admin
from orchestrator.runtime.worker import JourneyWorker
from tests.runtime_harness import (
    isolated_settings,
    journey_source,
    make_event,
    prepare,
    publish,
    read_all,
    reader,
    wait_all_consumed,
    wait_until,
)

GREETING = journey_source(
    """
id: tl-greeting
name: Topic limit greeting
trigger:
  event: tl.signed_up
steps:
  - id: hello
    send: {channel: in_app, template: tl_hello}
""",
    {"tl_hello": 'in_app: {title: "Hi", body: "' + "{{ event.properties.n }}" * 8 + '"}'},
)

LIMIT = 3000


@contextlib.asynccontextmanager
async def _worker(settings: Settings) -> AsyncIterator[tuple[JourneyWorker, asyncio.Task[None]]]:
    """A running worker and its `run()` task, so a test can check it never ended."""
    worker = JourneyWorker(settings)
    await worker.start()
    task = asyncio.create_task(worker.run())
    try:
        yield worker, task
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await worker.close()


def _traffic(tag: str) -> tuple[list[str], list[str], dict[str, str]]:
    """Customers, the ones whose message renders over `LIMIT`, and each one's property."""
    customers = [f"{tag}-{n}" for n in range(80)]
    big = customers[5::13]
    # Eight copies of 600 bytes: ~4.8 KB rendered; the others render a few hundred bytes,
    # so several share a batch of up to 3000 bytes.
    return customers, big, {c: ("y" * 600 if c in big else c) for c in customers}


async def _check(
    settings: Settings, topics: TopicNames, customers: list[str], big: list[str]
) -> None:
    """Every valid message delivered once, each oversized one dead-lettered once."""
    async with reader(settings, topics.outbound) as outbound:
        sent = await read_all(outbound, settings)
    async with reader(settings, topics.deadletter) as deadletter:
        letters = await read_all(deadletter, settings)
    valid = [c for c in customers if c not in big]
    assert Counter(m["customer_id"] for m in sent) == dict.fromkeys(valid, 1)
    assert Counter(letter["key"] for letter in letters) == dict.fromkeys(big, 1)
    for letter in letters:
        assert letter["source"]["topic"] == topics.outbound
        assert "MessageSizeTooLargeError" in letter["reason"]


async def _set_limit(settings: Settings, topic: str, limit: int) -> None:
    """Set `topic`'s max.message.bytes and wait until the broker reports it."""
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": str(limit)})]
        )
    limits = TopicLimits(settings.kafka_bootstrap, [topic])

    async def applied() -> bool:
        await limits.load()
        return limits.limit(topic) == limit

    await wait_until(applied, f"{topic}'s max.message.bytes is {limit}")


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_a_topic_limit_below_the_producers_is_kept_without_refusals(
    infrastructure: Settings, feed: str
) -> None:
    settings = isolated_settings(infrastructure, feed=feed)
    names = TopicNames(settings.topic_prefix)
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        await admin.create_topics(
            [
                NewTopic(
                    names.outbound,
                    settings.partitions,
                    1,
                    topic_configs={"max.message.bytes": str(LIMIT)},
                )
            ]
        )
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([GREETING])
    customers, big, props = _traffic("tl")
    # Published before the worker starts, so many messages of a partition share a batch.
    await publish(settings, [make_event(c, "tl.signed_up", {"n": props[c]}) for c in customers])
    async with _worker(settings) as (worker, task):
        assert worker.limits.limit(topics.outbound) == LIMIT
        await wait_all_consumed(settings)
        await _check(settings, topics, customers, big)
        assert not task.done(), "the worker stopped"
        # Nothing was refused by the broker: the oversized records never left the worker.
        assert worker.producer.renewals == 0
        assert worker.health.retries == 0


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_a_limit_lowered_while_running_renews_the_producer_not_the_worker(
    infrastructure: Settings, feed: str
) -> None:
    settings = isolated_settings(infrastructure, feed=feed)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([GREETING])
    customers, big, props = _traffic("tl2")
    async with _worker(settings) as (worker, task):
        # The worker read the default limit at start; the operator lowers it afterwards.
        assert worker.limits.limit(topics.outbound) == 1024 * 1024
        await _set_limit(settings, topics.outbound, LIMIT)
        await publish(settings, [make_event(c, "tl.signed_up", {"n": props[c]}) for c in customers])
        await wait_all_consumed(settings)
        await _check(settings, topics, customers, big)
        assert not task.done(), "the worker stopped"
        # The broker refused batches; the worker renewed its producer and re-read the limit.
        assert worker.producer.renewals >= 1
        assert worker.limits.limit(topics.outbound) == LIMIT
