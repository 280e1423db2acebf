"""Every CLI failure is one clear line on stderr with a non-zero exit, never a traceback.

Against the real broker and Redis: unreachable or silent services are real closed or mute
ports, and published lines are read back from the topic.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from orchestrator.cli import main
from orchestrator.control.publisher import EventPublisher
from orchestrator.infra import reach
from orchestrator.infra.settings import Settings
from orchestrator.infra.topiclimits import TopicLimits
from orchestrator.infra.topics import kafka_admin
from orchestrator.simulate import read_events_file
from tests.journey_fixtures import FIXTURES
from tests.runtime_harness import (
    isolated_settings,
    make_event,
    prepare,
    read_all,
    reader,
    wait_until,
)

CLOSED = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once
KAFKA_FIX = "ORCHESTRATOR_KAFKA_BOOTSTRAP"
REDIS_FIX = "ORCHESTRATOR_REDIS_URL"


def use(monkeypatch: pytest.MonkeyPatch, settings: Settings, **overrides: str) -> None:
    """Point the CLI at `settings` (through the environment, as a user would), then override."""
    for name, value in {**settings.as_environment(), **overrides}.items():
        monkeypatch.setenv(name, value)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    """The single `error:` line stderr must be; fails with all of stderr otherwise."""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def event_line(event_id: str, customer: str = "c1", **properties: Any) -> str:
    return json.dumps(
        {
            "event_id": event_id,
            "customer_id": customer,
            "name": "start",
            "occurred_at": "2026-05-04T10:00:00Z",
            "properties": properties,
        }
    )


@pytest.fixture
def isolated(infrastructure: Settings) -> Settings:
    return isolated_settings(infrastructure)


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text(event_line("e1") + "\n")
    return path


# --- Kafka ---


@pytest.mark.parametrize(
    "argv",
    [["topics", "create"], ["journeys", "list"], ["publish", "EVENTS"], ["deploy", "JOURNEY"]],
    ids=" ".join,
)
def test_unreachable_kafka_is_one_line_naming_the_address(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated: Settings,
    events_file: Path,
    argv: list[str],
) -> None:
    use(monkeypatch, isolated, ORCHESTRATOR_KAFKA_BOOTSTRAP=CLOSED)
    files = {"EVENTS": str(events_file), "JOURNEY": str(FIXTURES / "cart")}
    code, _, err = run_cli(capsys, *(files.get(arg, arg) for arg in argv))
    line = one_error_line(err)
    assert code == 1
    assert f"Kafka at {CLOSED} is not reachable" in line
    assert KAFKA_FIX in line and "make infra" in line


@pytest.fixture
def mute_port() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers a byte."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"127.0.0.1:{server.getsockname()[1]}"


def test_a_kafka_that_never_answers_fails_in_bounded_time(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated: Settings,
    mute_port: str,
) -> None:
    # The default bound is 15 s; a shorter one keeps the test quick and shows it is obeyed
    # (aiokafka alone would wait 40 s, its request timeout).
    monkeypatch.setattr(reach, "KAFKA_CONNECT_SECONDS", 2.0)
    use(monkeypatch, isolated, ORCHESTRATOR_KAFKA_BOOTSTRAP=mute_port)
    started = time.monotonic()
    code, _, err = run_cli(capsys, "topics", "create")
    elapsed = time.monotonic() - started
    line = one_error_line(err)
    assert code == 1
    assert elapsed < 10, f"took {elapsed:.1f}s"
    assert f"Kafka at {mute_port} is not reachable (no answer in time)" in line


def test_a_malformed_bootstrap_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated: Settings
) -> None:
    use(monkeypatch, isolated, ORCHESTRATOR_KAFKA_BOOTSTRAP="kafka:ninety")
    code, _, err = run_cli(capsys, "topics", "create")
    line = one_error_line(err)
    assert code == 1
    assert "ORCHESTRATOR_KAFKA_BOOTSTRAP=kafka:ninety" in line
    assert "HOST:PORT" in line


def test_commands_on_a_deployment_without_topics_say_to_create_them(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated: Settings
) -> None:
    # Without the check, reading the missing deploy log waits 30 s, then a bare TimeoutError.
    use(monkeypatch, isolated)
    code, _, err = run_cli(capsys, "journeys", "list")
    line = one_error_line(err)
    assert code == 1
    assert f"topic {isolated.topic_prefix}journeys does not exist" in line
    assert "orchestrator topics create" in line


# --- Redis ---


def test_unreachable_redis_is_one_line_for_an_operator_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated: Settings
) -> None:
    use(monkeypatch, isolated, ORCHESTRATOR_REDIS_URL=f"redis://:secret@{CLOSED}/0")
    code, _, err = run_cli(capsys, "journeys", "pause", "welcome")
    line = one_error_line(err)
    assert code == 1
    assert f"Redis at redis://:***@{CLOSED}/0 is not reachable (connection refused)" in line
    assert REDIS_FIX in line
    assert "secret" not in line


def test_a_malformed_redis_url_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated: Settings
) -> None:
    use(monkeypatch, isolated, ORCHESTRATOR_REDIS_URL="notaurl")
    code, _, err = run_cli(capsys, "journeys", "pause", "welcome")
    line = one_error_line(err)
    assert code == 1
    assert "ORCHESTRATOR_REDIS_URL=notaurl: not a Redis URL" in line
    assert "redis://" in line


def worker(settings: Settings, **overrides: str) -> subprocess.CompletedProcess[str]:
    """`orchestrator worker` in a subprocess, as deployed; it must exit on its own."""
    # A worker waits for Redis and Kafka at start-up before it gives up: 2 s here, not 120.
    env = {
        **os.environ,
        **settings.as_environment(),
        "ORCHESTRATOR_STARTUP_TIMEOUT_S": "2",
        "ORCHESTRATOR_HEALTH_PORT": "0",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"redis://{CLOSED}/0", f"error: Redis at redis://{CLOSED}/0 is not reachable"),
        (
            "redis://127.0.0.1:16379/zero",
            "error: ORCHESTRATOR_REDIS_URL=redis://127.0.0.1:16379/zero",
        ),
    ],
    ids=["unreachable", "malformed"],
)
def test_worker_start_up_without_redis_is_one_line(
    isolated: Settings, url: str, expected: str
) -> None:
    result = worker(isolated, ORCHESTRATOR_REDIS_URL=url)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(expected), result.stderr
    assert REDIS_FIX in errors[0]
    # Anything else on stderr is the worker's own timestamped log, not raw library output.
    assert result.stderr.splitlines()[-1] == errors[0]


# --- Settings ---


@pytest.mark.parametrize(
    "argv", [["topics", "create"], ["worker"], ["journeys", "list"]], ids=" ".join
)
def test_an_invalid_setting_names_the_variable(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated: Settings,
    argv: list[str],
) -> None:
    use(monkeypatch, isolated, ORCHESTRATOR_PARTITIONS="abc")
    code, _, err = run_cli(capsys, *argv)
    line = one_error_line(err)
    assert code == 1
    assert line.startswith("error: ORCHESTRATOR_PARTITIONS=abc: input should be a valid integer")


def test_a_json_setting_that_is_not_json_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, isolated: Settings
) -> None:
    use(monkeypatch, isolated, ORCHESTRATOR_CONNECTOR_RATE_LIMITS="notjson")
    code, _, err = run_cli(capsys, "topics", "create")
    line = one_error_line(err)
    assert code == 1
    assert line.startswith("error: ORCHESTRATOR_CONNECTOR_RATE_LIMITS is not valid JSON")


# --- Input files ---


def test_a_missing_or_unreadable_events_file_is_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated: Settings,
    tmp_path: Path,
) -> None:
    use(monkeypatch, isolated)
    missing = tmp_path / "nope.jsonl"
    for argv in (
        ["publish", str(missing)],
        ["simulate", str(FIXTURES / "cart"), "--events", str(missing)],
    ):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1
        assert one_error_line(err) == f"error: cannot read {missing}: No such file or directory"
    code, _, err = run_cli(capsys, "publish", str(tmp_path))
    assert code == 1
    assert one_error_line(err) == f"error: cannot read {tmp_path}: Is a directory"


def test_simulate_reports_a_non_utf8_line_and_reads_the_rest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        event_line("e1", "c1").encode()
        + b"\n"
        + event_line("e2", "c2", note="cafX").encode().replace(b"cafX", b"caf\xe9")
        + b"\n"
        + event_line("e3", "c3").encode()
        + b"\n"
    )
    code, _, err = run_cli(capsys, "simulate", str(FIXTURES / "cart"), "--events", str(events))
    assert code == 1
    [line] = err.splitlines()
    assert line.startswith(f"{events}:2: skipped: not valid UTF-8 (byte 0xe9 at column")
    assert "save the file as UTF-8" in line
    numbered, _ = read_events_file(events)
    assert [(number, event.event_id) for number, event in numbered] == [(1, "e1"), (3, "e3")]


async def _read_events_topic(settings: Settings) -> list[Any]:
    async with reader(settings, f"{settings.topic_prefix}events") as topic:
        return await read_all(topic, settings)


def test_publish_reports_bad_and_oversized_lines_and_sends_the_others(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    isolated: Settings,
    tmp_path: Path,
) -> None:
    asyncio.run(prepare(isolated))
    use(monkeypatch, isolated)
    lines = [event_line(f"e{n}", f"c{n % 5}").encode() for n in range(1, 43)]
    lines[20] = event_line("e21", "c1", blob="x" * (1024 * 1024 + 10)).encode()  # line 21
    lines[29] = b'{"event_id": "e30", "note": "\xff\xfe"}'  # line 30
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")

    code, out, err = run_cli(capsys, "publish", str(events))

    assert code == 1
    assert "Traceback" not in err
    size = err.split("the event is ")[1].split(" ")[0]
    assert err.splitlines() == [
        f"{events}:21: not sent: the event is {size} bytes as a record, over the 1,048,576"
        f"-byte limit of topic {isolated.topic_prefix}events: make its properties smaller",
        f"{events}:30: not sent: not valid UTF-8 (byte 0xff at column 30): save the file as UTF-8",
    ]
    assert out == "published 40 events (20 before line 21, 20 after); 2 lines not sent\n"
    received = asyncio.run(_read_events_topic(isolated))
    assert sorted(r["event_id"] for r in received) == sorted(
        f"e{n}" for n in range(1, 43) if n not in (21, 30)
    )


def test_a_record_the_broker_refuses_is_reported_and_later_ones_still_go(
    isolated: Settings,
) -> None:
    """The topic allows less than the publisher believed: the broker's refusal is per line."""

    async def scenario() -> tuple[list[Any], Any, Any, Any]:
        topics = await prepare(isolated)
        async with kafka_admin(isolated.kafka_bootstrap) as admin:
            await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC, topics.events, {"max.message.bytes": "20000"}
                    )
                ]
            )
        await wait_until(
            lambda: _topic_limit_is(isolated, topics.events, 20000),
            "the broker applied the topic's new max.message.bytes",
        )
        async with EventPublisher(isolated) as publisher:
            publisher.max_record_bytes = 1024 * 1024  # as if read before the topic changed
            first = await publisher.publish_lines([(1, make_event("c1", "a", event_id="a"))])
            big = make_event("c1", "b", {"blob": "x" * 50_000}, event_id="b")
            refused = await publisher.publish_lines([(2, big)])
            last = await publisher.publish_lines([(3, make_event("c1", "c", event_id="c"))])
        async with reader(isolated, topics.events) as topic:
            received = await read_all(topic, isolated)
        return received, first, refused, last

    received, first, refused, last = asyncio.run(scenario())
    assert (first.sent, first.refused) == ([1], {})
    assert refused.sent == []
    assert "the broker refused the batch holding it as too large" in refused.refused[2]
    assert "max.message.bytes" in refused.refused[2]
    assert (last.sent, last.refused) == ([3], {})
    assert [r["event_id"] for r in received] == ["a", "c"]


async def _topic_limit_is(settings: Settings, topic: str, value: int) -> bool:
    """True once the broker reports `value` as the topic's max.message.bytes."""
    limits = TopicLimits(settings.kafka_bootstrap, [topic], max_request_size=1024 * 1024)
    await limits.load()
    return limits.limit(topic) == value
