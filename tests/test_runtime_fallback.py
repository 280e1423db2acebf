"""Live: a permanent failure falls back to the step's next channel; global guards hold."""

from __future__ import annotations

import time
from typing import Any

from connectors.base import Permanent, read_outbound
from connectors.records import receipt_event
from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.settings import Settings
from tests.runtime_harness import (
    isolated_settings,
    journey_source,
    make_event,
    prepare,
    publish,
    reader,
    running_worker,
)

TEMPLATE = 'sms: {body: "Hi {{ profile.first_name }}"}\nemail: {subject: "Hi", body: "Hello"}\n'


def journey(journey_id: str, trigger: str) -> Any:
    """A transactional journey sending sms, falling back to email."""
    text = (
        f"id: {journey_id}\nname: {journey_id}\ncategory: transactional\n"
        f"trigger: {{event: {trigger}}}\n"
        "steps:\n"
        "  - id: hello\n"
        f"    send: {{channel: sms, template: {journey_id}_msg, fallback: [email]}}\n"
    )
    return journey_source(text, {f"{journey_id}_msg": TEMPLATE}, f"{journey_id}.yaml")


def reachable(customer: str) -> Any:
    return make_event(
        customer,
        "profile.updated",
        {"first_name": "Ada", "phone": "+33600000000", "email": "ada@example.com"},
        at=time.time() - 60,
    )


async def test_a_failed_sms_falls_back_to_email_and_suppresses_the_number(
    infrastructure: Settings,
) -> None:
    settings = isolated_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy(
        [journey("fb_first", "start"), journey("fb_second", "again")]
    )
    async with running_worker(settings), reader(settings, topics.outbound) as outbound:
        await publish(settings, [reachable("fb1"), make_event("fb1", "start")])
        [sms] = await outbound.until(lambda ms: len(ms) >= 1)
        assert sms["channel"] == "sms"
        # What the sms connector publishes when Twilio refuses the number for good.
        failure = receipt_event(
            read_outbound(sms), Permanent("21211", "invalid 'To' number"), time.time()
        )
        await publish(settings, [failure])
        messages = await outbound.until(lambda ms: len(ms) >= 2)
        email = messages[1]
        assert (email["channel"], email["journey"], email["step"]) == ("email", "fb_first", "hello")
        assert email["to"] == "ada@example.com"
        assert email["message_id"] != sms["message_id"]
        # The number is on the suppression list now: another journey's sms goes to email.
        await publish(settings, [make_event("fb1", "again")])
        messages = await outbound.until(lambda ms: len(ms) >= 3)
        assert (messages[2]["journey"], messages[2]["channel"]) == ("fb_second", "email")


async def test_the_global_cap_holds_across_journeys(infrastructure: Settings) -> None:
    settings = isolated_settings(infrastructure, global_cap={"sms": [1, "1d"]})
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy(
        [journey("gc_first", "start"), journey("gc_second", "start")]
    )
    async with running_worker(settings), reader(settings, topics.outbound) as outbound:
        await publish(settings, [reachable("gc1"), make_event("gc1", "start")])
        messages = await outbound.until(lambda ms: len(ms) >= 2)
    assert sorted((m["journey"], m["channel"]) for m in messages) == [
        ("gc_first", "sms"),
        ("gc_second", "email"),
    ]
