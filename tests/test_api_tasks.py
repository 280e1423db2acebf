"""`GET /v1/measure/tasks` end to end: interaction records through the real audit sink into
PostgreSQL, task files on disk, the figures equal to the ones worked out by hand."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest import approx

from orchestrator.audit.db import connection
from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.settings import Settings
from orchestrator.journey.library import read_sources
from orchestrator.simulate import read_events_file
from tests.api_harness import api_client, bearer, role_keys
from tests.audit_harness import fresh_database, produce, running_sink, wait_consumed
from tests.runtime_harness import (
    isolated_settings,
    prepare,
    publish,
    running_worker,
    wait_all_consumed,
    wait_until,
)
from tests.task_histories import HISTORIES, ORDER_TASK, H, wire_record

LIBRARY = Path(__file__).parent.parent / "journeys"


def _hours(time: dict[str, Any]) -> tuple[int, float, float]:
    return time["count"], time["median_seconds"] / H, time["p90_seconds"] / H


async def test_task_figures_from_stored_records_equal_the_hand_computed_ones(
    infrastructure: Settings, tmp_path: Path
) -> None:
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "order-to-doorstep.yaml").write_text(ORDER_TASK)
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(
            infrastructure, database_url=url, tasks_dir=str(tmp_path / "tasks")
        )
        topics = await prepare(settings)
        values = [
            (customer, wire_record(customer, i, item).to_json())
            for customer, history in HISTORIES.items()
            for i, item in enumerate(history)
        ]
        await produce(settings, topics.interactions, values)
        async with running_sink(settings):
            await wait_consumed(settings, url, topics.interactions)
        keys = await role_keys(settings)
        async with api_client(settings) as client:
            refused = await client.get("/v1/measure/tasks", headers=bearer(keys["auditor"]))
            assert refused.status_code == 403
            answer = await client.get("/v1/measure/tasks", headers=bearer(keys["operator"]))
    assert answer.status_code == 200, answer.text
    [figures] = answer.json()["tasks"]
    assert (figures["task"], figures["customers"], figures["completions"]) == (
        "order-to-doorstep",
        4,
        5,
    )
    # Customer times 10, 20, 40, 48, 72 h; process times 4, 5, 10, 24 h.
    assert _hours(figures["customer_time"]) == (5, 40, 62.4)
    assert _hours(figures["process_time"]) == (4, 7.5, 19.8)
    assert {
        b["le_seconds"]: b["count"] for b in figures["customer_time"]["histogram"] if b["count"]
    } == {
        43_200: 1,
        86_400: 1,
        172_800: 2,
        345_600: 1,
    }
    assert figures["gap_seconds"] == 147 * H
    assert [(g["where"], g["seconds"] / H) for g in figures["gap"]] == [
        ("waiting for us · - · -", 66),  # C 15 + 15 + 30, D 6
        ("waiting for the customer · order-updates/watch · email", 48),  # A
        ("waiting for the customer · order-updates/shipped · email", 20),  # B 10-30 h
        ("waiting for us · order-updates/shipped · email", 6),  # B: reply to our SMS
        ("waiting for the customer · support/answer · sms", 4),  # B 36-40 h
        ("waiting for us · - · web", 3),  # C: NW-5 ordered until NW-3 shipped
    ]
    assert [g["share"] for g in figures["gap"]] == [n / 147 for n in (66, 48, 20, 6, 4, 3)]


async def test_no_task_directory_means_no_tasks(infrastructure: Settings, tmp_path: Path) -> None:
    settings = isolated_settings(infrastructure, tasks_dir=str(tmp_path / "absent"))
    keys = await role_keys(settings)
    async with api_client(settings) as client:
        answer = await client.get("/v1/measure/tasks", headers=bearer(keys["admin"]))
    assert (answer.status_code, answer.json()) == (200, {"tasks": []})


async def test_an_invalid_task_file_is_named_in_the_error(
    infrastructure: Settings, tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text(ORDER_TASK.replace("within: 30d", "within: soon"))
    settings = isolated_settings(infrastructure, tasks_dir=str(tmp_path))
    keys = await role_keys(settings)
    async with api_client(settings) as client:
        answer = await client.get("/v1/measure/tasks", headers=bearer(keys["admin"]))
    assert answer.status_code == 500
    body = answer.json()
    assert body["code"] == "invalid_task_files"
    assert body["message"].startswith(f"{tmp_path / 'bad.yaml'}:4:9: within: bad duration 'soon'")


async def test_a_library_task_from_sample_events_through_a_real_worker(
    infrastructure: Settings,
) -> None:
    """onboarding-activation's samples through a worker and the sink; the library's task
    `signup-to-first-plan` measured over what they recorded."""
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(
            infrastructure, database_url=url, tasks_dir=str(LIBRARY / "tasks")
        )
        await prepare(settings)
        sources, problems = read_sources([LIBRARY / "onboarding-activation.yaml"])
        assert not problems
        await JourneyOperations(settings, "test").deploy(sources)
        numbered, bad = read_events_file(LIBRARY / "samples" / "onboarding-activation.jsonl")
        assert not bad
        # Published before the worker starts, so every sample comes before any timer.fired
        # the worker's timer pump adds (the samples are months old): each customer's timers
        # fire in event time, when their next event comes, as in `orchestrator simulate`.
        await publish(settings, [event for _, event in numbered])
        async with running_worker(settings), running_sink(settings):
            await wait_all_consumed(settings)

            async def both_activated() -> bool:
                async with connection(url) as conn:
                    cur = await conn.execute(
                        "SELECT count(*) FROM audit_records"
                        " WHERE kind = 'exit' AND body->>'reason' = 'goal'"
                    )
                    row = await cur.fetchone()
                return row is not None and row[0] == 2

            await wait_until(both_activated, "Ana's and Cy's goal exits stored")
        keys = await role_keys(settings)
        async with api_client(settings) as client:
            answer = await client.get("/v1/measure/tasks", headers=bearer(keys["operator"]))
        report = await asyncio.to_thread(_report, settings)
    assert report.returncode == 0, report.stderr
    assert "Task signup-to-first-plan" in report.stdout
    assert "2 customers completed it (2 times)" in report.stdout
    assert "onboarding-activation/await_plan_after_nudge" in report.stdout
    assert answer.status_code == 200, answer.text
    tasks = {t["task"]: t for t in answer.json()["tasks"]}
    assert tasks["order-to-doorstep"]["completions"] == 0
    figures = tasks["signup-to-first-plan"]
    # Ana: created 06-01 08:05, first plan 13:00, activated 06-02 10:00: 25 h 55 m, 21 h.
    # Cy: created 06-01 11:00, nudged by push 06-02 11:00 (the 1-day wait timed out), first
    # plan 06-03 09:00, activated 18:00: 55 h, 9 h. Bo never activated.
    assert (figures["customers"], figures["completions"]) == (2, 2)
    ana, cy = 93_300, 198_000
    assert _seconds(figures["customer_time"]) == approx((2, (ana + cy) / 2, 187_530))
    assert _seconds(figures["process_time"]) == approx((2, 54_000, 71_280))  # 32400 + 0.9*43200
    # Gap: Ana 4 h 55 m and Cy 24 h at await_first_plan after their sign-up in the app;
    # Cy 22 h after our push nudge, at await_plan_after_nudge.
    assert figures["gap_seconds"] == 17_700 + 165_600
    assert [(g["where"], g["seconds"]) for g in figures["gap"]] == [
        ("waiting for us · onboarding-activation/await_first_plan · app", 17_700 + 86_400),
        ("waiting for the customer · onboarding-activation/await_plan_after_nudge · push", 79_200),
    ]


def _seconds(time: dict[str, Any]) -> tuple[int, float, float]:
    return time["count"], time["median_seconds"], time["p90_seconds"]


def _report(settings: Settings) -> subprocess.CompletedProcess[str]:
    """`orchestrator report` against the test's namespace and database."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "report"],
        env={**os.environ, **settings.as_environment(), "COLUMNS": "120"},
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
