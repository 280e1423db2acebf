"""The runtime applies journeys exactly as the simulator predicts, once per event."""

from __future__ import annotations

from collections import Counter

import pytest

from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.infra.settings import Settings
from tests.runtime_harness import (
    isolated_settings,
    prepare,
    reader,
    running_worker,
    wait_all_consumed,
)
from tests.runtime_scenario import (
    deploy_scenario,
    runtime_outcomes,
    scenario_events,
    simulated_outcomes,
)


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_runtime_sends_what_the_simulator_predicts(
    infrastructure: Settings, feed: str
) -> None:
    settings = isolated_settings(infrastructure, feed=feed)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(40)
    expected = simulated_outcomes(events)
    exits = sum(n for key, n in expected.items() if key[0] == "exit")
    assert exits == 40 and any(key[0] == "suppress" for key in expected)

    async with running_worker(settings), reader(settings, topics.interactions) as log:
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        records = await log.until(lambda rs: sum(1 for r in rs if r.get("type") == "exit") >= exits)
        await wait_all_consumed(settings)
    assert runtime_outcomes(records) == expected
    counters, active = await JourneyOperations(settings, "test").live_stats("rt-onboarding")
    assert counters["entered"] == 40 and active == 0
    assert sum(n for name, n in counters.items() if name.startswith("exit:")) == exits
    sent = Counter(key[4] for key, n in expected.items() for _ in range(n) if key[0] == "send")
    assert {name: n for name, n in counters.items() if name.startswith("sent:")} == {
        f"sent:{channel}": n for channel, n in sent.items()
    }


async def test_redelivered_events_send_nothing_twice(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(12)
    expected_sends = sum(n for key, n in simulated_outcomes(events).items() if key[0] == "send")

    async with running_worker(settings), reader(settings, topics.outbound) as outbound:
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        await outbound.until(lambda ms: len(ms) >= expected_sends)
        await wait_all_consumed(settings)
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        await wait_all_consumed(settings)
        sentinel = scenario_events(1)
        async with EventPublisher(settings) as publisher:
            await publisher.publish(sentinel)
        messages = await outbound.until(
            lambda ms: any(m["customer_id"] == sentinel[0].customer_id for m in ms)
        )
        await wait_all_consumed(settings)
    ids = Counter(m["message_id"] for m in messages)
    assert max(ids.values()) == 1
    assert sum(1 for m in messages if m["customer_id"] != sentinel[0].customer_id) == expected_sends
