"""Kafka and Redis outages are ridden out, not fatal (issue 12, parts 3 and 4).

These stop and start a private broker and Redis server (free ports, own state), never the
shared ones, with `orchestrator worker` in a subprocess serving /health.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.engine.actions import Sent
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.infra.settings import Settings
from orchestrator.journey.library import load_journeys
from orchestrator.simulate import Simulator
from tests.outage_infra import (
    PrivateServer,
    free_port,
    health,
    in_thread,
    private_kafka,
    private_redis,
    wait_for_state,
)
from tests.runtime_harness import (
    WorkerProcess,
    isolated_settings,
    no_pending_timers,
    prepare,
    publish,
    read_all,
    reader,
    wait_all_consumed,
    wait_until,
)
from tests.runtime_scenario import JOURNEYS, deploy_scenario, scenario_events

OUTAGE_SECONDS = 30.0  # the figure


@pytest.fixture(scope="module")
def kafka() -> Iterator[tuple[PrivateServer, str]]:
    server, bootstrap = private_kafka()
    server.start()
    try:
        yield server, bootstrap
    finally:
        server.remove()


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrivateServer, str]]:
    server, url = private_redis(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server, url
    finally:
        server.remove()


@pytest.fixture
def private(
    infrastructure: Settings,
    kafka: tuple[PrivateServer, str],
    redis: tuple[PrivateServer, str],
) -> Iterator[Settings]:
    """Isolated settings on the private servers, both running, with /health on a free port."""
    for server, _ in (kafka, redis):
        if not server.running:
            server.start()
    yield isolated_settings(
        infrastructure,
        kafka_bootstrap=kafka[1],
        redis_url=redis[1],
        health_port=free_port(),
        batch_max=20,
    )


def _sends(events: list[Event]) -> dict[str, Sent]:
    simulator = Simulator(catalog_of(load_journeys([JOURNEYS])))
    return {a.message_id: a for a in simulator.run(events) if isinstance(a, Sent)}


async def _outage(server: PrivateServer, port: int, state: str) -> float:
    """Stop `server`, see the worker report `state`, keep it down 30 s; the stop's time."""
    stopped = time.monotonic()
    await in_thread(server.stop)
    await wait_for_state(port, state)
    # The outage's length is the point of the test, not a synchronisation.
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
    await in_thread(server.start)
    await wait_for_state(port, "healthy", timeout=90)
    return time.monotonic() - stopped


async def _trickle(settings: Settings, events: list[Event], stop: asyncio.Event) -> None:
    """Publish `events` a few at a time until done: load while Redis is away."""
    for start in range(0, len(events), 8):
        await publish(settings, events[start : start + 8])
        if stop.is_set():
            await publish(settings, events[start + 8 :])
            return
        await asyncio.sleep(0.05)  # pacing of the load, not a synchronisation


@pytest.mark.timeout(420)
@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_redis_then_kafka_down_30s_under_load_loses_and_duplicates_nothing(
    private: Settings,
    kafka: tuple[PrivateServer, str],
    redis: tuple[PrivateServer, str],
    tmp_path: Path,
    feed: str,
) -> None:
    settings = private.model_copy(update={"feed": feed})
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(360)
    # Split by customer, not by event, so each customer's events keep their order.
    phases = [
        [e for e in events if int(e.customer_id.rsplit("-", 1)[1]) % 3 == n] for n in range(3)
    ]
    sends = _sends(events)
    port = settings.health_port

    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        async with reader(settings, topics.outbound) as outbound:
            await wait_for_state(port, "healthy")
            await publish(settings, phases[0])
            await outbound.until(lambda ms: len(ms) >= 10)

            # Redis away for 30 s while events keep arriving.
            done = asyncio.Event()
            trickle = asyncio.create_task(_trickle(settings, phases[1], done))
            redis_down = await _outage(redis[0], port, "waiting_for_redis")
            done.set()
            await trickle

            # Kafka away for 30 s with a backlog in hand.
            await publish(settings, phases[2])
            before = len(outbound.values)
            await outbound.until(lambda ms: len(ms) > before)
            kafka_down = await _outage(kafka[0], port, "waiting_for_kafka")

            await outbound.until(
                lambda ms: {m["message_id"] for m in ms} >= set(sends), timeout=120
            )
            await wait_all_consumed(settings)
            await wait_until(lambda: no_pending_timers(settings), "every timer fired")
            await wait_all_consumed(settings)
            messages = await read_all(outbound, settings)
        assert worker.process.poll() is None, "the worker did not ride the outages out"
        status, body = await health(port)
        assert (status, body["state"]) == (200, "healthy")
        assert body["batch_retries"] > 0, "no batch was caught by an outage"
        worker.terminate()
        assert worker.process.returncode == 0
    finally:
        if worker.process.poll() is None:
            worker.kill()
        print(f"===== worker log\n{worker.log()}")

    distinct: dict[str, dict[str, object]] = {}
    for message in messages:
        assert distinct.setdefault(message["message_id"], message) == message
    assert set(distinct) == set(sends), "lost or extra messages"
    per_step = Counter((m["customer_id"], m["step"], m["channel"]) for m in distinct.values())
    assert per_step == Counter((s.customer_id, s.step, s.channel) for s in sends.values())
    text = worker.log()
    assert "Traceback" not in text and "Unclosed" not in text
    # Summary lines, not one per attempt: a generous bound for ~70 s of outages.
    assert len(text.splitlines()) < 150, f"{len(text.splitlines())} log lines"
    print(f"redis down {redis_down:.0f} s, kafka down {kafka_down:.0f} s, {len(messages)} records")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_sigterm_while_kafka_is_down_ends_the_worker_within_30s(
    private: Settings, kafka: tuple[PrivateServer, str], tmp_path: Path, feed: str
) -> None:
    settings = private.model_copy(update={"feed": feed})
    topics = await prepare(settings)
    await deploy_scenario(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        await wait_for_state(settings.health_port, "healthy")
        # A backlog and timers in hand, as in the drill.
        await publish(settings, scenario_events(100))
        async with reader(settings, topics.outbound) as outbound:
            await outbound.until(lambda ms: len(ms) >= 5)
        await in_thread(kafka[0].stop)
        await wait_for_state(settings.health_port, "waiting_for_kafka")
        asked = time.monotonic()
        worker.process.terminate()
        await asyncio.to_thread(worker.process.wait, 60)
        took = time.monotonic() - asked
        worker.terminate()  # already gone: this closes its log
    finally:
        if worker.process.poll() is None:
            worker.kill()
        print(f"===== worker log\n{worker.log()}")
    assert took < 30, f"took {took:.0f} s to stop"
    assert "Traceback" not in worker.log()
    assert "stopped" in worker.log() or "abandoned" in worker.log()
    print(f"stopped {took:.1f} s after SIGTERM, status {worker.process.returncode}")


def _worker(settings: Settings) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "worker"],
        env={**os.environ, **settings.as_environment()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("dependency", ["Redis", "Kafka"])
async def test_start_without_a_dependency_ends_with_one_clear_line(
    infrastructure: Settings, dependency: str
) -> None:
    nowhere = free_port()
    override = (
        {"redis_url": f"redis://127.0.0.1:{nowhere}/0"}
        if dependency == "Redis"
        else {"kafka_bootstrap": f"127.0.0.1:{nowhere}"}
    )
    settings = isolated_settings(infrastructure, startup_timeout_s=3, **override)
    started = time.monotonic()
    process = _worker(settings)
    _, stderr = await asyncio.to_thread(process.communicate, None, 60)
    took = time.monotonic() - started
    assert process.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert errors[0].startswith(f"error: {dependency} at ") and "tried for 3 s" in errors[0]
    assert "Traceback" not in stderr and "Unclosed" not in stderr, stderr
    assert took < 30, took


async def test_a_worker_started_while_redis_is_down_waits_and_then_runs(
    private: Settings, redis: tuple[PrivateServer, str], tmp_path: Path
) -> None:
    settings = private.model_copy(update={"feed": "aiokafka"})
    await prepare(settings)
    await in_thread(redis[0].stop)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        await wait_for_state(settings.health_port, "waiting_for_redis")
        status, _ = await health(settings.health_port)
        assert status == 503
        await in_thread(redis[0].start)
        await wait_for_state(settings.health_port, "healthy")
        worker.terminate()
        assert worker.process.returncode == 0
    finally:
        if worker.process.poll() is None:
            worker.kill()
        print(f"===== worker log\n{worker.log()}")
