"""Poison records (huge, control characters, invalid UTF-8, at the broker's limit, garbage)
and records that cannot be produced never stop a worker: each becomes one bounded dead letter
and every valid customer is served exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic

from orchestrator import jsonwire
from orchestrator.contracts.codec import DEADLETTER_MAX_BYTES
from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.infra.batching import RecordBatcher
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin
from orchestrator.runtime.worker import JourneyWorker
from tests.runtime_harness import (
    isolated_settings,
    journey_source,
    make_event,
    of_type,
    prepare,
    read_all,
    reader,
    wait_all_consumed,
)

GREETING = journey_source(
    """
id: pp-greeting
name: Poison test greeting
trigger:
  event: pp.signed_up
steps:
  - id: hello
    send: {channel: in_app, template: pp_hello}
""",
    # Eight copies of the property: a 200 KB property renders a 1.6 MB message.
    {"pp_hello": 'in_app: {title: "Hi", body: "' + "{{ event.properties.n }}" * 8 + '"}'},
)

BROKER_LIMIT = 1048588  # the broker's default message.max.bytes (a whole record batch)
_BIG_TOPIC_LIMIT = 8 * 1024 * 1024


def _poison(customer: str) -> list[bytes]:
    """Records no worker can use, under one valid customer's key (so the same partition)."""
    head = b'{"event_id":"p","customer_id":"' + customer.encode() + b'","name":"pp.x",'
    return [
        b"\x01" * 200_000,  # the drill's record: control characters, ~200 KB
        b'{"customer_id":"' + b"\x1f" * 300_000 + b'"}',  # JSON escaping grows it 6x
        b"\xff\xfe" * 150_000,  # invalid UTF-8 (base64 grows it 4/3)
        head + b'"occurred_at":"' + b"9" * 400_000 + b'"}',  # an error quoting the input
        b"\x02" * (BROKER_LIMIT - 200),  # just under the broker's default limit
        b"\x03" * (BROKER_LIMIT + 200),  # just over it (this topic allows more)
        b"\x00" * (3 * 1024 * 1024),  # over-large
        b"garbage {",
        b"[1, 2]",
    ]


@contextlib.asynccontextmanager
async def _worker(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """A running worker; yields its `run()` task so a test can check it never ended."""
    worker = JourneyWorker(settings)
    await worker.start()
    task = asyncio.create_task(worker.run())
    try:
        yield task
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await worker.close()


async def _prepare_with_big_events(settings: Settings) -> TopicNames:
    """Topics, with an `events` topic that accepts records past the broker's default limit."""
    topics = TopicNames(settings.topic_prefix)
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        await admin.create_topics(
            [
                NewTopic(
                    topics.events,
                    settings.partitions,
                    1,
                    topic_configs={"max.message.bytes": str(_BIG_TOPIC_LIMIT)},
                )
            ]
        )
    return await prepare(settings)


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_poison_records_among_valid_traffic_are_bounded_dead_letters(
    infrastructure: Settings, feed: str
) -> None:
    settings = isolated_settings(infrastructure, feed=feed)
    topics = await _prepare_with_big_events(settings)
    await JourneyOperations(settings, "test").deploy([GREETING])
    customers = [f"pp-{n}" for n in range(12)]
    poisoned = customers[::4]
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_request_size=_BIG_TOPIC_LIMIT
    )
    async with _worker(settings) as task:
        await producer.start()
        try:
            # Valid traffic before and after the poison, on the same partitions.
            for customer in customers:
                event = make_event(customer, "pp.signed_up", {"n": customer})
                await producer.send_and_wait(
                    topics.events, jsonwire.dumps(event.to_wire()), key=customer.encode()
                )
                if customer in poisoned:
                    for value in _poison(customer):
                        await producer.send_and_wait(topics.events, value, key=customer.encode())
        finally:
            await producer.stop()
        await wait_all_consumed(settings, timeout=120)
        assert not task.done(), "the worker stopped"
        async with reader(settings, topics.outbound) as outbound:
            sent = await read_all(outbound, settings)
        async with reader(settings, topics.deadletter) as deadletter:
            letters = await read_all(deadletter, settings)
            sizes = [len(r.value) for r in deadletter.raw]
        async with reader(settings, topics.events, raw=True) as events:
            await read_all(events, settings)
            originals = {(m.partition, m.offset): m.value for m in events.raw}
        assert not task.done(), "the worker stopped"

    assert Counter(m["customer_id"] for m in sent) == dict.fromkeys(customers, 1)
    assert {m["content"]["body"] for m in sent} == {c * 8 for c in customers}
    assert len(letters) == len(poisoned) * len(_poison(customers[0]))
    assert max(sizes) <= DEADLETTER_MAX_BYTES
    seen = set()
    for letter in letters:
        source = letter["source"]
        assert source["topic"] == topics.events
        seen.add((source["partition"], source["offset"]))
        original = originals[(source["partition"], source["offset"])]
        assert letter["original_length"] == len(original)
        assert letter["sha256"] == hashlib.sha256(original).hexdigest()
    assert len(seen) == len(letters), "one dead letter per poison record"


async def test_a_message_too_large_to_produce_is_dead_lettered_and_recorded(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure, feed="aiokafka")
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([GREETING])
    customers = [f"big-{n}" for n in range(20)]
    huge = customers[7]
    properties = {c: {"n": "x" * 200_000 if c == huge else c} for c in customers}
    # Published before the worker starts, so the huge one shares its batch with the others.
    async with EventPublisher(settings) as publisher:
        await publisher.publish([make_event(c, "pp.signed_up", properties[c]) for c in customers])
    async with _worker(settings) as task:
        await wait_all_consumed(settings)
        async with reader(settings, topics.deadletter) as deadletter:
            letters = await deadletter.until(lambda ls: len(ls) >= 2)
        async with reader(settings, topics.interactions) as interactions:
            records = await interactions.until(lambda rs: bool(of_type(rs, "error", huge)))
        async with reader(settings, topics.outbound) as outbound:
            sent = await read_all(outbound, settings)
        async with reader(settings, topics.deadletter) as deadletter:
            letters = await read_all(deadletter, settings)
        assert not task.done(), "the worker stopped"

    others = [c for c in customers if c != huge]
    assert Counter(m["customer_id"] for m in sent) == dict.fromkeys(others, 1)
    # The outbound message and its `send` interaction record (which holds the content too).
    assert sorted(letter["source"]["topic"] for letter in letters) == sorted(
        [topics.outbound, topics.interactions]
    )
    for letter in letters:
        assert letter["reason"].startswith(f"could not produce to {letter['source']['topic']}: ")
        assert "MessageSizeTooLargeError" in letter["reason"]
        assert letter["key"] == huge and letter["truncated"] is True
        assert letter["original_length"] > 1024 * 1024
    [failed] = of_type(records, "error", huge)
    assert failed["record_id"] == f"undelivered:{failed['message_id']}"
    assert failed["journey"] == "pp-greeting" and "could not produce to" in failed["error"]


async def test_a_batch_the_broker_refuses_is_retried_record_by_record(
    infrastructure: Settings,
) -> None:
    """Records that each fit, batched past a topic's limit: the broker refuses the batch;
    only the one record that is too large on its own is refused in the end.

    Not idempotent: an idempotent producer's partition sequence breaks on a refused batch
    (every later batch fails with OutOfOrderSequenceNumber, which `send_all` raises as
    retriable without `renew`); the worker keeps batches under each topic's limit and renews
    its producer after a refusal (`tests/test_runtime_topic_limits.py`, docs §9)."""
    settings = isolated_settings(infrastructure)
    topic = f"{settings.topic_prefix}small"
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"max.message.bytes": "3000"})]
        )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        records: list[tuple[str, bytes | None, bytes]] = [
            (topic, b"k", f"record {n} ".encode() + b"." * 1000) for n in range(6)
        ]
        records.insert(3, (topic, b"k", b"too large alone " + b"." * 5000))
        refused = await RecordBatcher(producer).send_all(records)
        # The producer still works after the refusal.
        after = await RecordBatcher(producer).send_all([(topic, b"k", b"after")])
    finally:
        await producer.stop()
    assert [r.index for r in refused] == [3]
    assert after == []
    async with reader(settings, topic, raw=True) as small:
        values: list[Any] = await small.until(lambda vs: len(vs) >= 7)
    assert sorted(values) == sorted([v for _, _, v in records if len(v) < 3000] + [b"after"])
