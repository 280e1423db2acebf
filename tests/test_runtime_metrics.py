"""A journey worker's `/metrics` over HTTP: batch latency, consumer lag, timer lateness."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.settings import Settings
from orchestrator.runtime.processor import BatchStats, InboundRecord
from orchestrator.runtime.worker import JourneyWorker
from tests.outage_infra import free_port
from tests.runtime_harness import (
    isolated_settings,
    journey_source,
    make_event,
    prepare,
    publish,
    wait_until,
)

CUSTOMER = "m-lagging"
PINGS = 20

LATER = journey_source(
    """
id: m-later
name: A note a second later
trigger: {event: m.start}
steps:
  - id: hold
    wait: 1s
  - id: note
    send: {channel: in_app, template: m_note}
""",
    {"m_note": 'in_app: {title: "Note", body: "a second later"}'},
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(port: int) -> Samples:
    """Every sample of `/metrics`, by name and labels."""
    url = f"http://127.0.0.1:{port}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _lags(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["partition"]: value
        for (name, labels), value in samples.items()
        if name == "orchestrator_worker_consumer_lag"
    }


@pytest.mark.parametrize("feed", ["faust", "aiokafka"])
async def test_worker_metrics_report_lag_batch_latency_and_timer_lateness(
    infrastructure: Settings, feed: str
) -> None:
    port = free_port()
    # Small batches: the first one leaves a backlog behind it.
    settings = isolated_settings(infrastructure, feed=feed, health_port=port, batch_max=5)
    await prepare(settings)
    await JourneyOperations(settings, "test").deploy([LATER])
    await publish(
        settings,
        [make_event(CUSTOMER, "m.ping") for _ in range(PINGS)] + [make_event(CUSTOMER, "m.start")],
    )

    worker = JourneyWorker(settings)
    process = worker.processor.process
    entered, release = asyncio.Event(), asyncio.Event()

    async def gated(records: Sequence[InboundRecord]) -> BatchStats:
        # Holds the first batch until the test has seen the backlog behind it.
        entered.set()
        await release.wait()
        return await process(records)

    worker.processor.process = gated  # type: ignore[method-assign]
    await worker.start()
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(entered.wait(), 60)
        held = await _scrape(port)
        release.set()

        async def settled() -> bool:
            samples = await _scrape(port)
            lags = _lags(samples)
            fired = samples[("orchestrator_worker_timer_lateness_seconds_count", ())]
            return bool(lags) and not any(lags.values()) and fired >= 1

        await wait_until(settled, "no lag left and the timer fired")
        after = await _scrape(port)
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, timeout=30)
        finally:
            await worker.close()

    # The customer's partition had the whole backlog but one batch at most still to do.
    assert max(_lags(held).values()) >= PINGS + 1 - 5, _lags(held)
    assert set(_lags(after).values()) == {0.0}
    assert after[("orchestrator_worker_batch_seconds_count", ())] > 0
    assert after[("orchestrator_worker_batch_seconds_sum", ())] > 0
    assert after[("orchestrator_worker_timer_lateness_seconds_count", ())] >= 1
    assert after[("orchestrator_worker_timers_fired_total", ())] >= 1
    # Late by a poll interval or so, never by minutes.
    assert 0 <= after[("orchestrator_worker_timer_lateness_seconds_sum", ())] < 60
