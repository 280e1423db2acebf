"""Dead letters: garbage on `events` goes to `deadletter` with a reason; the partition moves on."""

from __future__ import annotations

import base64

from orchestrator import jsonwire
from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.infra.settings import Settings
from tests.runtime_harness import (
    isolated_settings,
    journey_source,
    make_event,
    prepare,
    reader,
    running_worker,
    wait_all_consumed,
)

GREETING = journey_source(
    """
id: dl-greeting
name: Dead letter test greeting
trigger:
  event: dl.signed_up
steps:
  - id: hello
    send: {channel: in_app, template: dl_hello}
""",
    {"dl_hello": 'in_app: {title: "Hi", body: "Hello {{ event.properties.n }}"}'},
)

INVALID_UTF8 = b'{"customer_id": "\xff\xfe"}'


async def test_garbage_goes_to_deadletter_and_valid_events_behind_it_still_apply(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([GREETING])
    customers = [f"dl-{n}" for n in range(3)]
    # What each garbage record is, and the words its dead-letter reason must contain.
    garbage: list[tuple[bytes | None, str]] = [
        (b"this is not json {", "not valid JSON"),
        (b'[{"customer_id": "x"}]', "must be a JSON object"),
        (
            jsonwire.dumps(
                {"event_id": "e1", "name": "dl.signed_up", "occurred_at": "2026-01-01T00:00:00Z"}
            ),
            "names no customer",
        ),
        (
            jsonwire.dumps(
                {
                    "event_id": "e2",
                    "customer_id": "someone",
                    "name": "dl.signed_up",
                    "occurred_at": "2026-01-01T09:30:00",
                }
            ),
            "no time zone",
        ),
        (jsonwire.dumps({"customer_id": "someone", "name": "x"}), "event_id"),
        (INVALID_UTF8, "not valid JSON"),
        (b"", "not valid JSON"),
        (None, "empty record"),
    ]
    valid = [make_event(c, "dl.signed_up", {"n": c}) for c in customers]

    async with running_worker(settings):
        async with EventPublisher(settings) as publisher:
            for customer, event in zip(customers, valid, strict=True):
                # The same key as the valid event behind them: one partition, garbage first.
                for value, _ in garbage:
                    await publisher.publish_raw(value, key=customer.encode())  # type: ignore[arg-type]
                await publisher.publish([event])
        async with reader(settings, topics.outbound) as outbound:
            sent = await outbound.until(lambda ms: {m["customer_id"] for m in ms} >= set(customers))
        await wait_all_consumed(settings)
        async with reader(settings, topics.deadletter) as deadletter:
            letters = await deadletter.until(lambda ls: len(ls) >= len(garbage) * len(customers))
        async with reader(settings, topics.events, raw=True) as events_reader:
            await events_reader.until(
                lambda _: len(events_reader.raw) >= len(garbage) * len(customers) + len(valid)
            )
            source_of = {(m.partition, m.offset): (m.key, m.value) for m in events_reader.raw}

    assert len(letters) == len(garbage) * len(customers)
    assert sorted(m["customer_id"] for m in sent) == sorted(customers)
    assert {m["content"]["body"] for m in sent} == {f"Hello {c}" for c in customers}
    for letter, raw in zip(letters, deadletter.raw, strict=True):
        source = letter["source"]
        assert source["topic"] == topics.events
        key, value = source_of[(source["partition"], source["offset"])]
        assert raw.key == key, "a dead letter keeps the original key"
        assert letter["key"] == key.decode()
        if value is None:
            assert "value" in letter and letter["value"] is None
        elif "value_b64" in letter:
            assert base64.b64decode(letter["value_b64"]) == value == INVALID_UTF8
        else:
            assert letter["value"].encode() == value
        expected = dict(garbage)[value]
        assert expected in letter["reason"], (letter["reason"], value)
    # Every garbage record of every customer is there, once.
    seen = {(letter["source"]["partition"], letter["source"]["offset"]) for letter in letters}
    assert len(seen) == len(letters)
