"""The journey metrics collector reads at most every `max_age_s` and survives a lost database;
the API's `/metrics` carries NPS and CSAT per journey and channel, this week and all time."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.audit.db import DatabaseUnavailableError, connection
from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.interactions import InboundInteraction
from orchestrator.contracts.surveys import SURVEY_ANSWERED
from orchestrator.infra.settings import Settings
from orchestrator.measure.journeys import JourneyProjection
from orchestrator.measure.prometheus import Connection, JourneyMetrics
from orchestrator.measure.surveys import iso_week
from orchestrator.timefmt import format_instant
from tests.api_harness import api_client
from tests.audit_harness import fresh_database, produce, running_sink, wait_consumed
from tests.runtime_harness import isolated_settings, prepare


def _enter(n: int) -> dict[str, object]:
    return {
        "type": "enter", "record_id": f"e{n}", "at": "2026-06-01T10:00:00Z",
        "customer_id": f"c{n}", "journey": "j", "version": 1, "instance_id": "j:1",
    }  # fmt: skip


async def test_reads_are_cached_and_a_lost_database_serves_the_last_read(
    infrastructure: Settings,
) -> None:
    now = [100.0]
    collector = JourneyMetrics(max_age_s=5.0, clock=lambda: now[0])
    registry = CollectorRegistry()
    registry.register(collector)
    async with fresh_database(infrastructure) as url:
        healthy = True

        @contextlib.asynccontextmanager
        async def lend() -> AsyncIterator[Connection]:
            if not healthy:
                raise DatabaseUnavailableError("PostgreSQL is away")
            async with connection(url) as conn:
                yield conn

        async def store(n: int) -> None:
            async with connection(url) as conn, conn.transaction():
                await JourneyProjection().apply(conn, [_enter(n)])

        def entered() -> str:
            text = generate_latest(registry).decode()
            return next(
                line
                for line in text.splitlines()
                if line.startswith("orchestrator_journey_entered_total")
            )

        await store(1)
        await collector.refresh(lend)
        assert entered().endswith(" 1.0")
        await store(2)
        now[0] += 4.9  # within max_age: no read
        await collector.refresh(lend)
        assert entered().endswith(" 1.0")
        now[0] += 0.2
        await collector.refresh(lend)
        assert entered().endswith(" 2.0")
        healthy = False
        now[0] += 10
        await collector.refresh(lend)  # no error: the last read stays
        assert entered().endswith(" 2.0")


def _answer(n: int, at: datetime, survey: str, score: int, journey: str, channel: str) -> bytes:
    """The inbound record the worker stores for a `survey.answered` event."""
    instant = format_instant(at.timestamp())
    properties = {"survey": survey, "score": score, "channel": channel, "journey": journey,
                  "message_id": f"m{n}"}  # fmt: skip
    event = EventRecord(
        event_id=f"ans-{n}", customer_id=f"c{n}", name=SURVEY_ANSWERED, occurred_at=instant,
        channel=channel, properties=properties,
    )  # fmt: skip
    return InboundInteraction(
        record_id=f"in:ans-{n}", at=instant, received_at=instant, customer_id=f"c{n}", event=event
    ).to_json()


async def test_nps_and_csat_per_journey_and_channel_this_week_and_all_time(
    infrastructure: Settings,
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=21)
    # This week on email: NPS 10, 9, 3 (2 promoters, 1 detractor); CSAT 5, 2.
    # Three weeks ago: NPS 6, 7 on email, 10 on sms; CSAT 4 on email.
    answers = [
        (now, "nps", 10, "welcome", "email"), (now, "nps", 9, "welcome", "email"),
        (now, "nps", 3, "welcome", "email"), (now, "csat", 5, "welcome", "email"),
        (now, "csat", 2, "welcome", "email"), (old, "nps", 6, "welcome", "email"),
        (old, "nps", 7, "welcome", "email"), (old, "nps", 10, "welcome", "sms"),
        (old, "csat", 4, "welcome", "email"),
    ]  # fmt: skip
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        topics = await prepare(settings)
        values = [(f"c{n}", _answer(n, *a)) for n, a in enumerate(answers)]
        await produce(settings, topics.interactions, values)
        async with running_sink(settings):
            await wait_consumed(settings, url, topics.interactions)
        async with api_client(settings) as client:
            text = (await client.get("/metrics")).text
    # The read's week is the wall clock's: the same as the answers' unless a Monday began
    # in between, when no answer is this week's and no week series may be shown.
    same_week = iso_week(datetime.now(UTC)) == iso_week(now)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("orchestrator_survey")
        for s in family.samples
    }

    # The Grafana dashboard's survey panels ask only for metrics exported here.
    dashboard = (
        Path(__file__).parent.parent / "deploy/grafana/orchestrator-journeys.json"
    ).read_text()
    asked = set(re.findall(r"orchestrator_survey_[a-z_]+", dashboard))
    assert asked and asked <= {name for name, _ in samples}

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    email = {"journey": "welcome", "channel": "email"}
    # All time on email: NPS 2 promoters, 1 passive, 2 detractors of 5; CSAT 2 of 3.
    assert value("orchestrator_survey_nps", **email, period="all") == 0.0
    assert value("orchestrator_survey_nps", journey="welcome", channel="sms", period="all") == 100
    assert value("orchestrator_survey_csat", **email, period="all") == 100 * 2 / 3
    assert value("orchestrator_survey_responses", survey="nps", **email, period="all") == 5
    week = {
        (name, *(v for k, v in labels if k in ("channel", "survey", "group"))): amount
        for (name, labels), amount in samples.items()
        if ("period", "week") in labels
    }
    # This week, on email only: NPS (2 - 1) / 3, CSAT 1 of 2.
    assert week == ({
        ("orchestrator_survey_nps", "email"): 100 * 1 / 3,
        ("orchestrator_survey_csat", "email"): 50.0,
        ("orchestrator_survey_responses", "email", "nps"): 3,
        ("orchestrator_survey_responses", "email", "csat"): 2,
        ("orchestrator_survey_nps_answers", "email", "promoters"): 2,
        ("orchestrator_survey_nps_answers", "email", "passives"): 0,
        ("orchestrator_survey_nps_answers", "email", "detractors"): 1,
        ("orchestrator_survey_csat_satisfied", "email"): 1,
    } if same_week else {})  # fmt: skip
    groups = {
        group: value("orchestrator_survey_nps_answers", **email, period="all", group=group)
        for group in ("promoters", "passives", "detractors")
    }
    assert groups == {"promoters": 2, "passives": 1, "detractors": 2}
    assert value("orchestrator_survey_csat_satisfied", **email, period="all") == 2
