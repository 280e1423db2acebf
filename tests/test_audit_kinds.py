"""Step transitions, and a send's consent and journey version, are in the store: in the
customer's records (and by kind, by journey), not in their inbound/outbound timeline."""

from __future__ import annotations

from orchestrator.audit.db import connection
from orchestrator.audit.personal import PersonalFields
from orchestrator.audit.query import TIMELINE_KINDS, AuditFilter, query_page
from orchestrator.audit.verify import verify
from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.interactions import (
    InboundInteraction,
    SendInteraction,
    StepInteraction,
)
from orchestrator.infra.settings import Settings
from tests.audit_harness import fresh_database, produce, running_sink, wait_consumed
from tests.runtime_harness import isolated_settings, prepare

PERSONAL = PersonalFields.from_setting(Settings().audit_personal_fields)
WHO = "k1"


Record = InboundInteraction | StepInteraction | SendInteraction


def _step(record_id: str, at: str, step: str, variant: str | None = None) -> StepInteraction:
    return StepInteraction(
        record_id=record_id, at=at, customer_id=WHO, journey="welcome", version=3, step=step,
        instance_id="i1", caused_by="k1-e0", variant=variant, holdout=True if variant else None,
    )  # fmt: skip


def _journey_of_one_customer() -> list[Record]:
    at = "2026-06-01T10:00:00Z"
    event = EventRecord(
        event_id="k1-e0", customer_id=WHO, name="signed_up", occurred_at=at,
        properties={"email": "k1@example.com"},
    )  # fmt: skip
    send = SendInteraction(
        record_id="send:k1-m1", at=at, customer_id=WHO, journey="welcome", step="hello",
        channel="email", template="hello", category="marketing", consent="opted_in",
        content={"to": "k1@example.com"}, message_id="k1-m1", version=3, instance_id="i1",
        caused_by="k1-e0",
    )  # fmt: skip
    inbound = InboundInteraction(
        record_id="in:k1-e0", at=at, received_at=at, customer_id=WHO, event=event
    )
    return [
        inbound,
        _step("step:k1-1", at, "hello"),
        send,
        _step("step:k1-2", "2026-06-01T10:05:00Z", "ab", variant="b"),
    ]


async def test_steps_consent_and_version_are_stored(infrastructure: Settings) -> None:
    async with fresh_database(infrastructure) as url:
        settings = isolated_settings(infrastructure, database_url=url)
        topics = await prepare(settings)
        records = _journey_of_one_customer()
        await produce(settings, topics.interactions, [(WHO, r.to_json()) for r in records])
        async with running_sink(settings):
            await wait_consumed(settings, url, topics.interactions)
        async with connection(url) as conn:
            everything = await query_page(conn, AuditFilter(customer=WHO), PERSONAL)
            assert [r.record_id for r in everything.records] == [
                "in:k1-e0", "step:k1-1", "send:k1-m1", "step:k1-2",
            ]  # fmt: skip
            steps = await query_page(
                conn, AuditFilter(journey="welcome", kinds=("step",)), PERSONAL
            )
            assert [(r.kind, r.journey, r.customer_id, r.direction) for r in steps.records] == [
                ("step", "welcome", WHO, None), ("step", "welcome", WHO, None),
            ]  # fmt: skip
            assert [r.record["step"] for r in steps.records] == ["hello", "ab"]
            assert steps.records[1].record["variant"] == "b"
            assert steps.records[1].record["holdout"] is True
            assert all(r.record["version"] == 3 for r in steps.records)
            [send] = (
                await query_page(conn, AuditFilter(customer=WHO, kinds=("send",)), PERSONAL)
            ).records
            assert (send.record["consent"], send.record["category"]) == ("opted_in", "marketing")
            assert (send.record["version"], send.journey, send.direction) == (
                3,
                "welcome",
                "outbound",
            )
            assert send.record["content"] == {"to": "k1@example.com"}  # opened, sealed at rest
            timeline = await query_page(
                conn, AuditFilter(customer=WHO, kinds=TIMELINE_KINDS), PERSONAL
            )
            assert [r.record_id for r in timeline.records] == ["in:k1-e0", "send:k1-m1"]
            report = await verify(conn)
            assert report.broken is None and report.records == 4
