"""`orchestrator lag`, `topics dump` and `deadletters list|replay` against the real broker/Redis.

Setup runs in `asyncio.run` (a worker, publishing); the commands run as a user runs them,
through `main` with the settings in the environment.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from orchestrator import jsonwire
from orchestrator.cli import main
from orchestrator.contracts.codec import DeadLetter, deadletter_value
from orchestrator.contracts.events import EventRecord
from orchestrator.control.publisher import EventPublisher
from orchestrator.engine.events import TIMER_FIRED
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.origin import ORIGIN_HEADER, EngineOrigin
from orchestrator.infra.settings import Settings
from tests.runtime_harness import (
    isolated_settings,
    make_event,
    prepare,
    publish,
    read_all,
    reader,
    redis_client,
    running_worker,
    topic_size,
    wait_all_consumed,
)

CLOSED = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once
KEY_A = "a" * 32  # the engine key a record was signed with
KEY_B = "b" * 32  # another deployment's key: its workers dead-letter what A signed


def use(monkeypatch: pytest.MonkeyPatch, settings: Settings, **overrides: str) -> None:
    """Point the CLI at `settings` through the environment, as a user would."""
    for name, value in {**settings.as_environment(), **overrides}.items():
        monkeypatch.setenv(name, value)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


# --- lag ---


def test_lag_before_and_after_a_worker_consumed_with_overdue_timers(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, infrastructure: Settings
) -> None:
    settings = isolated_settings(infrastructure)
    events = TopicNames(settings.topic_prefix).events
    asyncio.run(prepare(settings))
    asyncio.run(publish(settings, [make_event(f"lag-{n}", "lag.ping") for n in range(5)]))
    use(monkeypatch, settings)

    code, out, _ = run_cli(capsys, "lag", "--json")
    before = json.loads(out)
    assert code == 0
    assert before["group"] == settings.group_id
    assert before["total_lag"] == 5
    assert before["total_overdue_timers"] == 0
    assert [(p["topic"], p["partition"]) for p in before["partitions"]] == [
        (events, p) for p in range(4)
    ]
    assert sum(p["end"] for p in before["partitions"]) == 5

    async def consume_then_leave_a_timer_due() -> None:
        async with running_worker(settings):
            await wait_all_consumed(settings)
        async with redis_client(settings) as redis:
            timers = RedisKeys(settings.redis_prefix).timers(events, 2)
            await redis.zadd(timers, {b'["x","j","i","t"]': time.time() - 60})
            await redis.zadd(timers, {b'["y","j","i","t"]': time.time() + 3600})

    asyncio.run(consume_then_leave_a_timer_due())
    code, out, _ = run_cli(capsys, "lag", "--json")
    after = json.loads(out)
    assert after["total_lag"] == 0
    assert after["total_overdue_timers"] == 1
    assert [p["overdue_timers"] for p in after["partitions"]] == [0, 0, 1, 0]
    assert all(p["committed"] == p["end"] for p in after["partitions"])

    code, out, _ = run_cli(capsys, "lag")
    assert code == 0
    assert out.splitlines()[0] == f"group {settings.group_id}"
    assert "TIMERS DUE" in out.splitlines()[1]
    assert out.splitlines()[-1] == "total lag 0, 1 timers overdue"


def test_lag_without_redis_still_shows_kafka_and_says_why_timers_are_unknown(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, infrastructure: Settings
) -> None:
    settings = isolated_settings(infrastructure)
    asyncio.run(prepare(settings))
    use(monkeypatch, settings, ORCHESTRATOR_REDIS_URL=f"redis://{CLOSED}/0")
    code, out, err = run_cli(capsys, "lag")
    assert code == 0, err
    assert "total lag 0" in out
    assert f"overdue timers unknown: Redis at redis://{CLOSED}/0 is not reachable" in out


def test_lag_with_kafka_unreachable_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, infrastructure: Settings
) -> None:
    use(monkeypatch, isolated_settings(infrastructure), ORCHESTRATOR_KAFKA_BOOTSTRAP=CLOSED)
    for argv in (["lag"], ["topics", "dump", "events"], ["deadletters", "list"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1
        assert f"Kafka at {CLOSED} is not reachable" in one_error_line(err)


# --- topics dump ---


def test_topics_dump_decodes_json_and_shows_garbage_safely(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, infrastructure: Settings
) -> None:
    settings = isolated_settings(infrastructure)
    event = make_event("dump-1", "dump.ping", {"n": 1})

    async def fill() -> None:
        await prepare(settings)
        async with EventPublisher(settings) as publisher:
            # One key, so one partition, in this order.
            await publisher.publish_raw(b"\xff\xfe binary", key=b"dump-1")
            await publisher.publish_raw(b"plain text {", key=b"dump-1")
            await publisher.publish([event])

    asyncio.run(fill())
    use(monkeypatch, settings)

    code, out, _ = run_cli(capsys, "topics", "dump", "events", "--jsonl")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["value"] for r in records] == [
        {"b64": "//4gYmluYXJ5"},
        {"text": "plain text {"},
        EventRecord.of(event).to_dict(),
    ]
    assert {r["key"] for r in records} == {"dump-1"}
    assert [r["offset"] for r in records] == [0, 1, 2]
    assert all(r["timestamp"].endswith("Z") for r in records)

    code, out, err = run_cli(capsys, "topics", "dump", "events")
    assert code == 0 and "Traceback" not in err
    headers = [line for line in out.splitlines() if line.startswith("# ")]
    assert len(headers) == 3
    assert headers[0].startswith(f"# {settings.topic_prefix}events[")
    assert headers[0].endswith('key="dump-1"')
    assert err == "(3 records)\n"

    partition = records[0]["partition"]
    code, out, _ = run_cli(
        capsys, "topics", "dump", "events", "--last", "1", "--partition", str(partition), "--jsonl"
    )
    assert [json.loads(line)["value"] for line in out.splitlines()] == [
        EventRecord.of(event).to_dict()
    ]
    code, out, _ = run_cli(capsys, "topics", "dump", "events", "--key", "nobody", "--jsonl")
    assert out == ""
    # Following stops at --limit: here after what was already there.
    code, out, _ = run_cli(
        capsys, "topics", "dump", "events", "--follow", "--from-beginning", "--limit", "2"
    )
    assert code == 0 and out.count("\n# ") + out.startswith("# ") == 2


def test_topics_dump_of_an_unknown_topic_or_partition_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, infrastructure: Settings
) -> None:
    settings = isolated_settings(infrastructure)
    asyncio.run(prepare(settings))
    use(monkeypatch, settings)
    code, _, err = run_cli(capsys, "topics", "dump", "evnets")
    line = one_error_line(err)
    assert code == 1
    assert "topic evnets does not exist" in line and "events, outbound" in line
    code, _, err = run_cli(capsys, "topics", "dump", "events", "--partition", "9")
    assert code == 1
    assert f"topic {settings.topic_prefix}events has no partition 9" in one_error_line(err)


# --- deadletters ---


def _bad_records(customer: str) -> list[tuple[bytes, bytes, list[tuple[str, bytes]] | None]]:
    """(key, value, headers) of records a worker dead-letters, and why, in order."""
    at = "2026-05-04T10:00:00Z"
    timer = {
        "event_id": f"timer:{customer}:j:1:1",
        "customer_id": customer,
        "name": TIMER_FIRED,
        "occurred_at": at,
        "properties": {"journey": "j", "instance": "j:1", "timer": "1"},
    }
    signed = jsonwire.dumps(timer)
    return [
        # Still invalid after any fix on our side: refused.
        (
            customer.encode(),
            jsonwire.dumps({**timer, "name": "x", "occurred_at": "yesterday"}),
            None,
        ),
        (b"someone-else", jsonwire.dumps({**timer, "event_id": "k1", "name": "ops.ping"}), None),
        (customer.encode(), jsonwire.dumps({**timer, "event_id": "forged"}), None),
        # Signed with key A; the workers ran with key B (the fix: give them A).
        (
            customer.encode(),
            signed,
            EngineOrigin.from_secret(KEY_A.encode()).sign(customer.encode(), signed),
        ),
    ]


async def _dead_letters(settings: Settings, customer: str) -> None:
    """Publish the bad records, let a worker dead-letter them, add one whose original is gone."""
    topics = await prepare(settings)
    async with EventPublisher(settings) as publisher:
        for key, value, headers in _bad_records(customer):
            await publisher.publish_raw(value, key=key, headers=headers)
    async with running_worker(settings):
        await wait_all_consumed(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        gone = DeadLetter("engine error: boom", topics.events, 0, 999, b"c", b"{}")
        await producer.send_and_wait(topics.deadletter, deadletter_value(gone), key=b"c")
    finally:
        await producer.stop()


def test_deadletters_list_and_replay_send_only_what_a_worker_would_now_accept(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    infrastructure: Settings,
    tmp_path: Path,
) -> None:
    settings = isolated_settings(infrastructure, engine_key=KEY_B)
    topics = TopicNames(settings.topic_prefix)
    asyncio.run(_dead_letters(settings, "dl-c1"))
    use(monkeypatch, settings)

    saved = tmp_path / "dl.jsonl"
    code, out, _ = run_cli(capsys, "deadletters", "list", "--jsonl", str(saved))
    assert code == 0
    lines = out.splitlines()
    assert lines[-1].startswith("5 dead letters; wrote 4 originals to ")
    assert "1 gone (gone: " in lines[-1]
    headlines = [line for line in lines if line.startswith("deadletter[")]
    assert len(headlines) == 5
    assert any("Invalid isoformat string: 'yesterday'" in line for line in headlines)
    assert any(
        'key="someone-else"' in line and "is not the customer_id" in line for line in headlines
    )
    assert sum("forged engine event" in line for line in headlines) == 2
    assert all(" sha256:" in line and f"from {topics.events}[" in line for line in headlines)
    originals = [json.loads(line) for line in saved.read_text().splitlines()]
    assert [o["event_id"] for o in originals].count("forged") == 1

    code, out, _ = run_cli(capsys, "deadletters", "list", "--reason", "ISOFORMAT", "--limit", "1")
    assert out.splitlines()[-1] == "1 dead letters"

    # Not fixed yet: the workers still hold key B, so nothing is accepted.
    code, out, err = run_cli(capsys, "deadletters", "replay", "--dry-run")
    assert code == 1
    assert out.splitlines()[-1] == "would replay 0, refused 4, gone 1 (dry run: nothing sent)"
    assert err.count("refused: ") == 4 and err.count("skipped: ") == 1

    # The fix: every worker and operator uses key A. The signed record is now accepted.
    use(monkeypatch, settings, ORCHESTRATOR_ENGINE_KEY=KEY_A)
    code, out, err = run_cli(capsys, "deadletters", "replay", "--dry-run")
    assert out.splitlines()[-1] == "would replay 1, refused 3, gone 1 (dry run: nothing sent)"
    size = asyncio.run(topic_size(settings, topics.events))
    assert size == 4  # a dry run sends nothing

    code, out, err = run_cli(capsys, "deadletters", "replay", "--reason", "forged")
    assert code == 1  # the unsigned forgery is still refused, and stays a dead letter
    assert out.splitlines()[0].startswith(f"replayed: {topics.events}[")
    assert out.splitlines()[-1].startswith("replayed 1, refused 1, gone 0")
    assert "a worker would dead-letter it again: forged engine event" in err

    async def replayed() -> list[Any]:
        async with reader(settings, topics.events, raw=True) as events:
            await read_all(events, settings)
            return list(events.raw)

    last = asyncio.run(replayed())[-1]
    original = _bad_records("dl-c1")[3]
    assert (last.key, last.value) == original[:2]
    assert [(n, v) for n, v in last.headers] == [(ORIGIN_HEADER, original[2][0][1])]  # type: ignore[index]

    async def applied_by_a_worker_with_key_a() -> int:
        fixed = settings.model_copy(update={"engine_key": SecretStr(KEY_A)})
        async with running_worker(fixed):
            await wait_all_consumed(fixed)
        return await topic_size(settings, topics.deadletter)

    assert asyncio.run(applied_by_a_worker_with_key_a()) == 5  # no new dead letter
