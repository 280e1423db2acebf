"""Bounces: an SMTP server refusing the recipient (aiosmtpd) gives `message.bounced` beside
`message.failed`; the engine falls back and suppresses the address exactly once.

5xx at RCPT TO is a hard bounce (permanent); 4xx a soft bounce (retried, and once retries run
out, `message.failed` `retries_exhausted` with a soft `message.bounced`).
"""

from __future__ import annotations

from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from connectors.records import MESSAGE_BOUNCED, MESSAGE_FAILED
from orchestrator.control.operations import JourneyOperations
from orchestrator.dev.standins.smtp import MailSink, smtp_server
from orchestrator.infra.settings import Settings
from tests.connector_harness import connector_settings, events_named, running_connectors
from tests.runtime_harness import (
    journey_source,
    load_customers,
    make_event,
    of_type,
    prepare,
    publish,
    reader,
    running_worker,
)

_TEMPLATE = 'email: {subject: "Hi", body: "Hello"}\nsms: {body: "Hi by sms"}\n'


def _journey(journey_id: str, trigger: str) -> Any:
    text = (
        f"id: {journey_id}\nname: {journey_id}\ncategory: transactional\nreentry: always\n"
        f"trigger: {{event: {trigger}}}\n"
        "steps:\n"
        "  - id: hello\n"
        f"    send: {{channel: email, template: {journey_id}_msg, fallback: [sms]}}\n"
    )
    return journey_source(text, {f"{journey_id}_msg": _TEMPLATE}, f"{journey_id}.yaml")


class RefusingSink(MailSink):
    """Refuses `gone@` for good (550) and `full@` for now (452), as mailbox servers do."""

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuse or accept the recipient."""
        if address.startswith("gone@"):
            return "550 5.1.1 no such user here"
        if address.startswith("full@"):
            return "452 4.2.2 mailbox full"
        envelope.rcpt_tos.append(address)
        return "250 OK"


async def test_a_hard_bounce_is_bounced_and_failed_and_falls_back_once(
    infrastructure: Settings,
) -> None:
    with smtp_server(RefusingSink()) as (mails, port):
        settings = connector_settings(infrastructure, smtp_port=port)
        topics = await prepare(settings)
        await JourneyOperations(settings, "test").deploy(
            [_journey("bn_first", "bn.start"), _journey("bn_second", "bn.again")]
        )
        customer = "bounce-ada"
        async with (
            running_worker(settings),
            running_connectors(settings, ["email"]),
            reader(settings, topics.events) as events,
            reader(settings, topics.outbound) as outbound,
            reader(settings, topics.interactions) as log,
        ):
            profile = {"email": "gone@example.com", "phone": "+15554440001"}
            await publish(
                settings,
                [
                    make_event(customer, "profile.updated", profile),
                    make_event(customer, "bn.start"),
                ],
            )
            values = await events.until(
                lambda vs: bool(events_named(vs, MESSAGE_BOUNCED, customer))
            )
            [failed] = events_named(values, MESSAGE_FAILED, customer)
            [bounced] = events_named(values, MESSAGE_BOUNCED, customer)
            assert failed["properties"]["error_code"] == "smtp_550"
            assert bounced["event_id"] == f"message.bounced:{failed['properties']['message_id']}"
            properties = bounced["properties"]
            assert (properties["bounce"], properties["error_code"]) == ("hard", "550")
            assert "no such user" in properties["error"]
            assert (properties["journey"], properties["step"], properties["channel"]) == (
                "bn_first",
                "hello",
                "email",
            )
            assert properties["message_id"] == failed["properties"]["message_id"]
            # The fallback: one sms. Then the second journey's email is suppressed (the address
            # is on the suppression list) and goes by sms too. The customer's events are
            # applied in order, so by then both receipts were.
            await publish(settings, [make_event(customer, "bn.again")])
            messages = await outbound.until(lambda ms: len(ms) >= 3)
            assert [(m["journey"], m["channel"]) for m in messages] == [
                ("bn_first", "email"),
                ("bn_first", "sms"),
                ("bn_second", "sms"),
            ]
            records = await log.until(
                lambda rs: any(r.get("journey") == "bn_second" for r in of_type(rs, "suppress"))
            )
            reasons = [(r["journey"], r["reason"]) for r in of_type(records, "suppress", customer)]
            assert reasons == [("bn_first", "failed"), ("bn_second", "suppressed_address")]
            [stored] = (await load_customers(settings, [customer])).values()
            assert stored.state.suppressed == ["email:gone@example.com"]
            assert not mails.messages


async def test_a_soft_bounce_is_retried_then_fails_without_suppressing(
    infrastructure: Settings,
) -> None:
    with smtp_server(RefusingSink()) as (mails, port):
        settings = connector_settings(infrastructure, smtp_port=port, connector_max_attempts=3)
        topics = await prepare(settings)
        await JourneyOperations(settings, "test").deploy([_journey("bn_soft", "bn.soft")])
        customer = "bounce-bob"
        async with (
            running_worker(settings),
            running_connectors(settings, ["email"]),
            reader(settings, topics.events) as events,
            reader(settings, topics.outbound) as outbound,
            reader(settings, topics.interactions) as log,
        ):
            profile = {"email": "full@example.com", "phone": "+15554440002"}
            await publish(
                settings,
                [make_event(customer, "profile.updated", profile), make_event(customer, "bn.soft")],
            )
            values = await events.until(
                lambda vs: bool(events_named(vs, MESSAGE_BOUNCED, customer))
            )
            [failed] = events_named(values, MESSAGE_FAILED, customer)
            [bounced] = events_named(values, MESSAGE_BOUNCED, customer)
            assert failed["properties"]["error_code"] == "retries_exhausted"
            assert (bounced["properties"]["bounce"], bounced["properties"]["error_code"]) == (
                "soft",
                "452",
            )
            records = await log.until(
                lambda rs: len([r for r in rs if r.get("type") == "provider"]) >= 3
            )
            tries = [r for r in records if r.get("type") == "provider"]
            # Each try's record says what the server answered and what came of it: the first
            # two were to be retried; after the last nothing more is tried, and its record
            # says so (compliance sees the final outcome, with the server's answer).
            assert [(r["attempt"], r["outcome"], r["error_code"]) for r in tries] == [
                (1, "retry", "smtp_452"),
                (2, "retry", "smtp_452"),
                (3, "failed", "retries_exhausted"),
            ]
            assert tries[2]["error"] == "3 tries: smtp_452: 4.2.2 mailbox full"
            assert "retry_after" not in tries[2]
            # Not an address failure: the fallback goes, the address is not suppressed.
            messages = await outbound.until(lambda ms: len(ms) >= 2)
            assert [m["channel"] for m in messages] == ["email", "sms"]
            [stored] = (await load_customers(settings, [customer])).values()
            assert stored.state.suppressed == []
            assert not mails.messages
