"""The runtime on a Redis Cluster: same decisions, customers spread over the shards."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from orchestrator.control.publisher import EventPublisher
from orchestrator.infra.settings import Settings
from tests.runtime_harness import (
    isolated_settings,
    prepare,
    read_all,
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


async def test_runtime_on_redis_cluster_matches_the_simulator(
    infrastructure: Settings, redis_cluster_url: str
) -> None:
    settings = isolated_settings(infrastructure, redis_url=redis_cluster_url, redis_cluster=True)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    events = scenario_events(40)
    expected = simulated_outcomes(events)
    exits = sum(n for key, n in expected.items() if key[0] == "exit")

    async with running_worker(settings), reader(settings, topics.interactions) as log:
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
        records = await log.until(lambda rs: sum(r.get("type") == "exit" for r in rs) >= exits)
        assert runtime_outcomes(records) == expected
        # Replayed events change nothing, on a cluster as on one node; a sentinel customer
        # behind them shows the replay was applied.
        sentinel = scenario_events(1)
        async with EventPublisher(settings) as publisher:
            await publisher.publish(events)
            await publisher.publish(sentinel)
        await wait_all_consumed(settings)
        records = await read_all(log, settings)
    sends = Counter(r["message_id"] for r in records if r.get("type") == "send")
    assert max(sends.values()) == 1
    assert (
        runtime_outcomes([r for r in records if r.get("customer_id") != sentinel[0].customer_id])
        == expected
    )

    shards_holding_customers = 0
    for port in (17001, 17002, 17003):
        node = Redis(host="127.0.0.1", port=port)
        try:
            keys = [k async for k in node.scan_iter(f"{settings.redis_prefix}{{c:*", count=500)]
        finally:
            await node.aclose()
        shards_holding_customers += bool(keys)
    assert shards_holding_customers >= 2
