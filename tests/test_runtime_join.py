"""A worker joining while events flow loses none of them (fresh group, both feeds)."""

from __future__ import annotations

import pytest

from orchestrator.control.publisher import EventPublisher
from orchestrator.infra.settings import Settings
from tests.runtime_harness import (
    committed_offsets,
    isolated_settings,
    prepare,
    read_all,
    reader,
    running_worker,
    wait_all_consumed,
    wait_until,
)
from tests.runtime_scenario import deploy_scenario, scenario_events


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_events_in_flight_during_the_first_rebalance_are_all_applied(
    infrastructure: Settings, feed: str
) -> None:
    settings = isolated_settings(infrastructure, feed=feed, batch_max=50)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(300)

    async with running_worker(settings) as first, reader(settings, topics.interactions) as log:
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        # The second worker joins while the first is still working through the backlog.
        await log.until(lambda rs: len(rs) >= 1)
        async with running_worker(settings) as second:
            await wait_until(
                lambda: _both_own(first.pump.partitions, second.pump.partitions),
                "both workers own partitions",
            )
            await wait_all_consumed(settings)
            records = await read_all(log, settings)
    # Timers of the scenario's waits may come due on a slow run: they are the engine's own.
    applied = {
        r["event"]["event_id"]
        for r in records
        if r.get("type") == "inbound" and r["event"]["name"] != "timer.fired"
    }
    assert applied == {e.event_id for e in events}


async def _both_own(a: set[int], b: set[int]) -> bool:
    return bool(a) and bool(b)


async def test_topic_setup_commits_start_offsets_for_a_fresh_group(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    async with EventPublisher(settings) as publisher:
        await publisher.publish(scenario_events(20))
    # Every partition starts committed at 0, so nothing published after setup can be skipped.
    assert await committed_offsets(settings) == {
        (topics.events, p): 0 for p in range(settings.partitions)
    }
