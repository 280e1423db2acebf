"""Asynchronous bounces end to end: an email sent through the connector from its VERP address
(aiosmtpd as the relay), then a Postfix-shaped DSN mailed by SMTP to `orchestrator bounces`
(connectors/bounces.py), on the real Kafka and Redis: one `message.bounced`, however often the
DSN comes, the address suppressed for the next email, and a fallback only while the journey
still waits. Forged and foreign recipients are refused; auto-replies and unknown messages
publish nothing; Redis away is a 451."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiosmtplib
import pytest
from pydantic import SecretStr

from connectors.bounces import BounceHandler, BounceMetrics, BounceReceiver, serve_smtp
from connectors.records import MESSAGE_BOUNCED, MESSAGE_SENT
from connectors.verp import BounceAddresses
from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.dev.standins.local import free_port
from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.redisclient import connect_redis
from orchestrator.infra.settings import Settings
from tests.connector_harness import connector_settings, events_named, running_connectors
from tests.dsn_samples import postfix_dsn, sample
from tests.runtime_harness import (
    journey_source,
    load_customers,
    make_event,
    of_type,
    prepare,
    publish,
    reader,
    redis_client,
    running_worker,
)

DOMAIN = "bounces.northwind.example"


def _journey(
    journey_id: str, trigger: str, *, fallback: bool = False, steps_after: str = ""
) -> Any:
    """An email on `trigger`, falling back to sms if `fallback`, then `steps_after` (YAML
    step lines)."""
    send = (
        f"{{channel: email, template: {journey_id}_msg{', fallback: [sms]' if fallback else ''}}}"
    )
    text = (
        f"id: {journey_id}\nname: {journey_id}\ncategory: transactional\nreentry: always\n"
        f"trigger: {{event: {trigger}}}\n"
        f"steps:\n  - id: hello\n    send: {send}\n{steps_after}"
    )
    template = 'email: {subject: "Your order", body: "Shipped."}\nsms: {body: "Shipped."}\n'
    return journey_source(text, {f"{journey_id}_msg": template}, f"{journey_id}.yaml")


def _settings(infrastructure: Settings, relay_port: int) -> Settings:
    return connector_settings(
        infrastructure,
        smtp_port=relay_port,
        bounce_domain=DOMAIN,
        bounce_smtp_port=free_port(),
        bounce_metrics_port=0,
    )


@contextlib.asynccontextmanager
async def running_receiver(settings: Settings) -> AsyncIterator[BounceReceiver]:
    """An in-process `orchestrator bounces` for the duration of the block."""
    receiver = BounceReceiver(settings)
    async with receiver:
        task = asyncio.create_task(receiver.run())
        try:
            yield receiver
        finally:
            receiver.stop()
            await asyncio.wait_for(task, timeout=10)


async def _mail_dsn(settings: Settings, recipient: str, dsn: bytes) -> None:
    """Deliver `dsn` by SMTP as a relay does: from the null sender `<>`."""
    client = aiosmtplib.SMTP(hostname=settings.bounce_smtp_host, port=settings.bounce_smtp_port)
    async with client:
        await client.sendmail("", [recipient], dsn)


def _reports(receiver: BounceReceiver, outcome: str) -> float:
    value = receiver.metrics.registry.get_sample_value(
        "orchestrator_bounce_reports_total", {"outcome": outcome}
    )
    return value or 0.0


def _refused(receiver: BounceReceiver, reason: str) -> float:
    value = receiver.metrics.registry.get_sample_value(
        "orchestrator_bounce_refused_recipients_total", {"reason": reason}
    )
    return value or 0.0


async def test_a_dsn_mailed_twice_bounces_its_message_once_and_suppresses_the_address(
    infrastructure: Settings,
) -> None:
    with smtp_server() as (relay, port):
        settings = _settings(infrastructure, port)
        topics = await prepare(settings)
        await JourneyOperations(settings, "test").deploy(
            [_journey("dsn_first", "dsn.start"), _journey("dsn_second", "dsn.again")]
        )
        customer = "dsn-ada"
        async with (
            running_worker(settings),
            running_connectors(settings, ["email"]),
            running_receiver(settings) as receiver,
            reader(settings, topics.events) as events,
            reader(settings, topics.interactions) as log,
        ):
            profile = {"email": "gone@example.com"}
            started = [
                make_event(customer, "profile.updated", profile),
                make_event(customer, "dsn.start"),
            ]
            await publish(settings, started)
            values = await events.until(lambda vs: bool(events_named(vs, MESSAGE_SENT, customer)))
            [sent] = events_named(values, MESSAGE_SENT, customer)
            message_id = sent["properties"]["message_id"]
            # The relay took it from the message's own bounce address; `From:` is unchanged.
            [envelope_sender] = relay.senders
            assert envelope_sender.startswith(f"b+{message_id}.")
            assert envelope_sender.endswith(f"@{DOMAIN}")
            assert relay.messages[0]["From"] == "Northwind <hello@northwind.example>"

            dsn = postfix_dsn(
                envelope_sender,
                "gone@example.com",
                original_message_id=str(relay.messages[0]["Message-ID"]),
            )
            await _mail_dsn(settings, envelope_sender, dsn)
            await _mail_dsn(settings, envelope_sender, dsn)  # relays do deliver twice
            # Each DSN was handled before the receiver answered 250: anything it published is
            # on the partition before this customer's next event.
            await publish(settings, [make_event(customer, "dsn.again")])
            values = await events.until(lambda vs: bool(events_named(vs, "dsn.again", customer)))
            [bounced] = events_named(values, MESSAGE_BOUNCED, customer)
            assert bounced["event_id"] == f"message.bounced:{message_id}"
            properties = bounced["properties"]
            assert properties["bounce"] == "hard"
            assert properties["late"] is True
            assert (properties["status"], properties["error_code"]) == ("5.1.1", "550")
            assert "User unknown in virtual mailbox table" in properties["error"]
            assert (properties["journey"], properties["step"], properties["channel"]) == (
                "dsn_first",
                "hello",
                "email",
            )
            assert (_reports(receiver, "hard"), _reports(receiver, "duplicate")) == (1.0, 1.0)

            # The next email to that address, from another journey, is suppressed.
            records = await log.until(
                lambda rs: any(r.get("journey") == "dsn_second" for r in of_type(rs, "suppress"))
            )
            reasons = [(r["journey"], r["reason"]) for r in of_type(records, "suppress", customer)]
            assert reasons == [("dsn_first", "bounced"), ("dsn_second", "suppressed_address")]
            [stored] = (await load_customers(settings, [customer])).values()
            assert stored.state.suppressed == ["email:gone@example.com"]
            assert len(relay.messages) == 1


async def test_a_late_bounce_falls_back_only_while_the_journey_still_waits(
    infrastructure: Settings,
) -> None:
    """The waiting customer gets the sms; the one whose journey ended gets nothing more."""
    wait = "  - id: await_click\n    wait_for: {event: message.clicked, timeout: 1d}\n"
    marker = journey_source(
        "id: dsn_marker\nname: m\ncategory: transactional\nreentry: always\n"
        "trigger: {event: dsn.marker}\nsteps:\n"
        "  - id: note\n    send: {channel: in_app, template: dsn_note}\n",
        {"dsn_note": 'in_app: {title: "Hi", body: "Note"}'},
        "dsn_marker.yaml",
    )
    with smtp_server() as (relay, port):
        settings = _settings(infrastructure, port)
        topics = await prepare(settings)
        await JourneyOperations(settings, "test").deploy(
            [
                _journey("dsn_wait", "dsn.wait", fallback=True, steps_after=wait),
                _journey("dsn_done", "dsn.done", fallback=True),
                marker,
            ]
        )
        async with (
            running_worker(settings),
            running_connectors(settings, ["email"]),
            running_receiver(settings),
            reader(settings, topics.outbound) as outbound,
            reader(settings, topics.events) as events,
        ):
            for customer, trigger in (("dsn-waits", "dsn.wait"), ("dsn-ended", "dsn.done")):
                profile = {"email": f"{customer}@example.com", "phone": "+15554440009"}
                await publish(
                    settings,
                    [
                        make_event(customer, "profile.updated", profile),
                        make_event(customer, trigger),
                    ],
                )
            sent = await outbound.until(lambda ms: len(ms) >= 2)
            # Their receipts: each message is in the identity index by now (and at the relay).
            await events.until(
                lambda vs: all(events_named(vs, MESSAGE_SENT, m["customer_id"]) for m in sent)
            )
            for envelope_sender in relay.senders:
                message_id = envelope_sender.removeprefix("b+").partition(".")[0]
                to = next(m["to"] for m in sent if m["message_id"] == message_id)
                await _mail_dsn(settings, envelope_sender, postfix_dsn(envelope_sender, to))
            await publish(settings, [make_event("dsn-ended", "dsn.marker")])
            messages = await outbound.until(
                lambda ms: (
                    any(m["channel"] == "in_app" for m in ms)
                    and any(m["channel"] == "sms" for m in ms)
                )
            )
            by_customer = {
                customer: [
                    (m["journey"], m["channel"]) for m in messages if m["customer_id"] == customer
                ]
                for customer in ("dsn-waits", "dsn-ended")
            }
            assert by_customer == {
                "dsn-waits": [("dsn_wait", "email"), ("dsn_wait", "sms")],
                "dsn-ended": [("dsn_done", "email"), ("dsn_marker", "in_app")],
            }


async def test_forged_and_foreign_recipients_are_refused_and_other_mail_publishes_nothing(
    infrastructure: Settings,
) -> None:
    settings = _settings(infrastructure, 25)
    topics = await prepare(settings)
    addresses = BounceAddresses(DOMAIN)
    async with redis_client(settings) as redis:
        await addresses.load(redis, RedisKeys(settings.redis_prefix))
    unknown = addresses.address("0" * 32)
    assert unknown is not None
    forged = f"b+{'1' * 32}.{'a' * 20}@{DOMAIN}"
    async with running_receiver(settings) as receiver, reader(settings, topics.events) as events:
        for recipient, reply in (
            (f"postmaster@{DOMAIN}", "5.1.1"),
            ("someone@example.com", "5.1.1"),
            (forged, "5.7.1"),
        ):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as caught:
                await _mail_dsn(settings, recipient, postfix_dsn(recipient, "gone@example.com"))
            [refusal] = caught.value.recipients
            assert (refusal.code, refusal.message.split()[0]) == (550, reply)
        assert (_refused(receiver, "not_ours"), _refused(receiver, "forged")) == (2.0, 1.0)

        # Signed, but no message of ours by that id (or long expired); then an auto-reply.
        await _mail_dsn(settings, unknown, postfix_dsn(unknown, "gone@example.com"))
        await _mail_dsn(settings, unknown, sample("vacation_autoreply.eml"))
        assert (_reports(receiver, "unknown_message"), _reports(receiver, "unparsed")) == (
            1.0,
            1.0,
        )
        await publish(settings, [make_event("dsn-nobody", "dsn.marker")])
        values = await events.until(lambda vs: bool(events_named(vs, "dsn.marker", "dsn-nobody")))
        assert [v["name"] for v in values] == ["dsn.marker"]


async def test_a_dsn_is_refused_for_now_while_redis_is_away(infrastructure: Settings) -> None:
    """451: the relay keeps the DSN and delivers it again later; nothing is lost."""
    settings = _settings(infrastructure, 25).model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "tracking_key": SecretStr("k")}
    )
    addresses = BounceAddresses(DOMAIN, settings.tracking_key)
    recipient = addresses.address("0" * 32)
    assert recipient is not None
    redis = connect_redis(settings)
    async with EventPublisher(settings) as publisher:
        handler = BounceHandler(
            addresses,
            redis,
            RedisKeys(settings.redis_prefix),
            publisher=publisher,
            clock=ScaledClock(1.0, 0.0),
            metrics=BounceMetrics(),
        )
        server = await serve_smtp(handler, settings.bounce_smtp_host, settings.bounce_smtp_port)
        try:
            with pytest.raises(aiosmtplib.SMTPDataError) as caught:
                await _mail_dsn(settings, recipient, postfix_dsn(recipient, "gone@example.com"))
            assert caught.value.code == 451
        finally:
            server.close()
            await server.wait_closed()
            await redis.aclose()
