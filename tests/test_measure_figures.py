"""Must hold: after a run with known outcomes, every journey figure equals an independent
count over the interaction records; duplicates and a kill -9 of the sink change none."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator import jsonwire
from orchestrator.audit.db import connection
from orchestrator.infra.settings import Settings
from orchestrator.measure import figures
from orchestrator.measure.experiments import Arm, evaluate
from orchestrator.measure.journeys import JourneyProjection
from orchestrator.measure.prometheus import JourneyMetrics
from tests.api_harness import api_client, bearer, role_keys
from tests.audit_harness import (
    SinkProcess,
    count_rows,
    fresh_database,
    produce,
    running_sink,
    wait_consumed,
)
from tests.measure_scenario import Scenario, assert_figures_exact, count_figures, scenario_records
from tests.runtime_harness import isolated_settings, prepare, wait_until


def _values(scenario: Scenario) -> list[tuple[str, bytes]]:
    return [(r["customer_id"], jsonwire.dumps(r)) for r in scenario.records]


async def test_every_figure_equals_a_count_over_the_records(infrastructure: Settings) -> None:
    scenario = scenario_records()
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=50)
        topics = await prepare(settings)
        await produce(settings, topics.interactions, _values(scenario))
        async with running_sink(settings, [JourneyProjection()]):
            await wait_consumed(settings, url, topics.interactions)
        await assert_figures_exact(url, scenario)
        await _assert_metrics(url, scenario)
        await _assert_api(settings, scenario)
        _assert_report(settings, scenario)


async def _assert_metrics(url: str, scenario: Scenario) -> None:
    """The Prometheus exposition carries the same counts."""
    collector = JourneyMetrics()
    registry = CollectorRegistry()
    registry.register(collector)
    await collector.refresh(lambda: connection(url))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }
    # The Grafana dashboard asks only for metrics the collector exports (the survey ones:
    # tests/test_measure_metrics.py, with answers to show).
    dashboard = (
        Path(__file__).parent.parent / "deploy/grafana/orchestrator-journeys.json"
    ).read_text()
    asked = set(re.findall(r"orchestrator_[a-z_]+", dashboard))
    assert {n for n in asked if not n.startswith("orchestrator_survey_")} <= {n for n, _ in samples}
    for version in (1, 2):
        expected = count_figures(scenario.records, scenario.trial, version)
        labels = {"journey": scenario.trial, "version": str(version)}
        assert (
            samples[("orchestrator_journey_entered_total", tuple(sorted(labels.items())))]
            == (expected["entered"])
        )
        for step, counts in expected["steps"].items():
            key = tuple(sorted({**labels, "step": step}.items()))
            assert samples[("orchestrator_journey_step_entered_total", key)] == counts["entered"]
            assert samples.get(("orchestrator_journey_step_waiting", key), 0) == counts["waiting"]
        for channel, n in expected["sends"].items():
            sent = sum(
                value
                for (name, sample), value in samples.items()
                if name == "orchestrator_journey_messages_total"
                and {**labels, "channel": channel, "outcome": "sent"}.items()
                <= dict(sample).items()
            )
            assert sent == n, (version, channel)


async def _assert_api(settings: Settings, scenario: Scenario) -> None:
    """The routes answer the same figures (operator key)."""
    keys = await role_keys(settings)
    async with api_client(settings) as client, connection(settings.database_url) as conn:
        headers = bearer(keys["operator"])
        answer = await client.get(
            f"/v1/measure/journeys/{scenario.trial}?version=2", headers=headers
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == jsonwire.loads(
            jsonwire.dumps(await figures.journey_figures(conn, scenario.trial, 2))
        )
        answer = await client.get(
            f"/v1/measure/journeys/{scenario.trial}/experiments", headers=headers
        )
        body = answer.json()
        assert [arm["variant"] for arm in body["experiments"][0]["arms"]] == [
            "control",
            "B",
            "holdout",
        ]
        assert body["experiments"][0]["control"] == "control"


def _cli(settings: Settings, *args: str) -> str:
    env = {**os.environ, **settings.as_environment(), "COLUMNS": "300"}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def _assert_report(settings: Settings, scenario: Scenario) -> None:
    """`orchestrator report` prints the same headline figures and the experiment's verdict."""
    stdout = _cli(settings, "report", scenario.trial)
    counted = count_figures(scenario.records, scenario.trial, None)
    assert (
        f"entered {counted['entered']}, active {counted['active']}, goals {counted['goals']}"
        in stdout
    )
    arms = [Arm(v, h, n, x) for (_, v), (h, n, x) in sorted(counted["arms"].items())]
    # The verdict is the table's caption, wrapped to its width.
    assert " ".join(evaluate("offer_test", arms).verdict.split()) in " ".join(stdout.split())


async def test_duplicates_and_a_killed_sink_change_no_figure(
    infrastructure: Settings, tmp_path: Path
) -> None:
    scenario = scenario_records(60)
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=20)
        topics = await prepare(settings)
        # Every record twice (an at-least-once producer's redelivery), the copies later.
        await produce(settings, topics.interactions, _values(scenario) + _values(scenario))
        log = tmp_path / "sink.log"
        # The real command: `orchestrator audit-sink` feeds the registered projections.
        first = SinkProcess(settings, log)
        try:
            await wait_until(lambda: _some_stored(url, len(scenario.records)), "the first batches")
        finally:
            first.kill()
        second = SinkProcess(settings, log)
        try:
            await wait_consumed(settings, url, topics.interactions)
        finally:
            assert second.terminate() == 0, log.read_text()
        assert await count_rows(url) == len(scenario.records)
        await assert_figures_exact(url, scenario)


async def _some_stored(url: str, total: int) -> bool:
    return 0 < await count_rows(url) < total


async def test_a_rebuild_counts_records_stored_before_the_projection(
    infrastructure: Settings,
) -> None:
    scenario = scenario_records(40)
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url, audit_batch_max=100)
        topics = await prepare(settings)
        await produce(settings, topics.interactions, _values(scenario))
        async with running_sink(settings):  # no projection: the store only
            await wait_consumed(settings, url, topics.interactions)
        assert await count_rows(url, "measure_instances") == 0
        read = _cli(settings, "measure", "rebuild")
        assert read == (
            f"journey figures rebuilt from {len(scenario.records)} stored records\n"
            "task figures kept for customers dropped (0 rows): the next call computes them\n"
        )
        await assert_figures_exact(url, scenario)
        # Again: the tables are emptied first, so nothing counts twice.
        _cli(settings, "measure", "rebuild")
        await assert_figures_exact(url, scenario)
