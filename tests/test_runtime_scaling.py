"""Two workers in one consumer group split the partitions; per-customer order still holds."""

from __future__ import annotations

from collections import Counter

import pytest

from orchestrator.infra.settings import Settings
from orchestrator.runtime.worker import JourneyWorker
from tests.runtime_harness import (
    isolated_settings,
    load_customers,
    make_event,
    of_type,
    prepare,
    publish,
    read_all,
    reader,
    running_worker,
    wait_all_consumed,
    wait_until,
)
from tests.runtime_scenario import (
    deploy_scenario,
    runtime_outcomes,
    scenario_events,
    simulated_outcomes,
)

SEQUENCE = 25


def _split(workers: tuple[JourneyWorker, ...], partitions: int) -> bool:
    owned = [w.pump.partitions for w in workers]
    union = set().union(*owned)
    return (
        all(owned) and sum(len(o) for o in owned) == len(union) and union == set(range(partitions))
    )


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_two_workers_split_the_partitions_and_keep_each_customers_order(
    infrastructure: Settings, feed: str
) -> None:
    settings = isolated_settings(infrastructure, feed=feed)
    topics = await prepare(settings)
    await deploy_scenario(settings)
    scenario = scenario_events(40)
    expected = simulated_outcomes(scenario)
    expected_sends = sum(n for key, n in expected.items() if key[0] == "send")
    exits = sum(n for key, n in expected.items() if key[0] == "exit")
    ordered = [f"seq-{n}" for n in range(40)]
    # Round-robin over customers, in seq order per customer: order is only per customer.
    numbered = [
        make_event(c, "profile.updated", {"seq": i})
        for i in range(1, SEQUENCE + 1)
        for c in ordered
    ]

    async with (
        running_worker(settings) as first,
        running_worker(settings) as second,
        reader(settings, topics.interactions) as log,
        reader(settings, topics.outbound) as outbound,
    ):
        workers = (first, second)
        await wait_until(
            lambda: _split(workers, settings.partitions), "the two workers split the partitions"
        )
        split = [sorted(w.pump.partitions) for w in workers]
        await publish(settings, numbered + scenario)
        await log.until(
            lambda rs: (
                len(of_type(rs, "exit")) >= exits
                and sum(1 for r in of_type(rs, "inbound") if r["customer_id"].startswith("seq-"))
                >= len(numbered)
            )
        )
        await wait_all_consumed(settings)
        records = await read_all(log, settings)
        messages = await read_all(outbound, settings)
        assert [sorted(w.pump.partitions) for w in workers] == split, "a rebalance happened"
        applied = [w.totals.events for w in workers]

    assert all(applied), f"both workers must apply events: {applied} (partitions {split})"
    for customer in ordered:
        seqs = [r["event"]["properties"]["seq"] for r in of_type(records, "inbound", customer)]
        assert seqs == list(range(1, SEQUENCE + 1)), customer
    stored = await load_customers(settings, ordered)
    assert {c: s.state.profile.get("seq") for c, s in stored.items()} == dict.fromkeys(
        ordered, SEQUENCE
    )
    # The journeys ran exactly once per customer: same outcomes as the simulator, no repeats.
    assert runtime_outcomes(records) == expected
    ids = Counter(m["message_id"] for m in messages)
    assert len(messages) == expected_sends and max(ids.values()) == 1
