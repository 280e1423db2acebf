"""`async with JourneyOperations(...)` shares one Redis client and one producer between calls
(what the HTTP API holds for its life); outside a block, each call opens and closes its own."""

from __future__ import annotations

import pytest

from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.settings import Settings
from tests.ops_counting import OpenedConnections
from tests.runtime_harness import isolated_settings, journey_source, prepare

JOURNEY = journey_source(
    """
id: ops-session
name: Session test journey
trigger: {event: ops.start}
steps:
  - id: note
    send: {channel: in_app, template: ops_note}
""",
    {"ops_note": 'in_app: {title: "Note", body: "hello"}'},
    path="ops-session.yaml",
)


async def test_one_redis_client_and_one_producer_serve_a_whole_block(
    infrastructure: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    opened = OpenedConnections(monkeypatch)
    async with JourneyOperations(settings, "test") as ops:
        await ops.deploy([JOURNEY])
        await ops.set_status("ops-session", "paused")
        await ops.set_status("ops-session", "active")
        counters, active = await ops.live_stats("ops-session")
        record = (await ops.records())["ops-session"]
    assert (counters, active) == ({}, 0)
    assert record["status"] == "active" and record["action"] == "resume"
    assert (len(opened.redis), len(opened.producers), len(opened.readers)) == (1, 1, 1)
    assert opened.producers[0]._closed, "the block's producer was left open"


async def test_calls_outside_a_block_open_and_close_their_own(
    infrastructure: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    opened = OpenedConnections(monkeypatch)
    ops = JourneyOperations(settings, "test")
    await ops.deploy([JOURNEY])
    await ops.live_stats("ops-session")
    # live_stats needs Redis only: no producer is started for it.
    assert (len(opened.redis), len(opened.producers)) == (2, 1)
    assert all(p._closed for p in opened.producers)


async def test_a_held_session_reads_the_deploys_made_elsewhere_since_its_last_read(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    await prepare(settings)
    async with JourneyOperations(settings, "reader") as reader:
        assert await reader.records() == {}
        await JourneyOperations(settings, "writer").deploy([JOURNEY])
        first = (await reader.records())["ops-session"]
        await JourneyOperations(settings, "writer").set_status("ops-session", "paused")
        second = (await reader.records())["ops-session"]
    assert (first["current"], first["status"]) == (1, "active")
    assert (second["status"], second["action"]) == ("paused", "pause")
