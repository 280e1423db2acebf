"""A journey's email reaches a real SMTP server (aiosmtpd), once, with one-click unsubscribe."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.records import MESSAGE_SENT
from orchestrator.control.operations import JourneyOperations
from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from orchestrator.infra.unsubscribe import UnsubscribeLinks
from tests.connector_harness import (
    caught_up,
    connector_settings,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import (
    journey_source,
    make_event,
    prepare,
    publish,
    reader,
    redis_client,
    running_worker,
    wait_until,
)

WELCOME = journey_source(
    """
id: conn-welcome
name: Connector welcome
category: transactional
trigger:
  event: conn.signed_up
steps:
  - id: welcome
    send: {channel: email, template: conn_welcome}
""",
    {
        "conn_welcome": """
email:
  subject: "Welcome, {{ profile.first_name }}"
  body: "Hello {{ profile.first_name }},\\n\\nyour {{ event.properties.plan }} plan is ready."
"""
    },
)


def _named(values: list[Any], name: str) -> list[dict[str, Any]]:
    return [v for v in values if isinstance(v, dict) and v.get("name") == name]


async def test_a_journeys_email_arrives_once_with_both_unsubscribe_headers(
    infrastructure: Settings,
) -> None:
    with smtp_server() as (mails, port):
        settings = connector_settings(infrastructure, smtp_port=port)
        topics = await prepare(settings)
        await JourneyOperations(settings, "test").deploy([WELCOME])
        customer = "ada"
        async with (
            running_worker(settings),
            running_connectors(settings, ["email"]),
            reader(settings, topics.events) as events,
            reader(settings, topics.interactions) as log,
            reader(settings, topics.outbound) as outbound,
        ):
            await publish(
                settings,
                [
                    make_event(
                        customer,
                        "profile.updated",
                        {"email": "ada@example.com", "first_name": "Ada"},
                    ),
                    make_event(customer, "conn.signed_up", {"plan": "pro"}, at=None),
                ],
            )
            await wait_until(lambda: len(mails.messages) >= 1, "the email reached aiosmtpd")
            [record] = await outbound.until(lambda values: len(values) >= 1)
            mail = mails.messages[0]
            assert mail["To"] == "ada@example.com"
            assert mail["From"] == "Northwind <hello@northwind.example>"
            assert mail["Subject"] == "Welcome, Ada"
            assert mail["Message-ID"] == f"<{record['message_id']}@northwind.example>"
            text = mail.get_body(("plain",))
            html = mail.get_body(("html",))
            assert text is not None and html is not None
            # SMTP carries CRLF line ends; the parsed body keeps them.
            body = text.get_content().replace("\r\n", "\n").strip()
            assert body == "Hello Ada,\n\nyour pro plan is ready."
            assert "<p>Hello Ada,</p>" in html.get_content()

            # RFC 8058: a mailto and an HTTPS URL, and the one-click POST header.
            assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            mailto, https = (
                part.strip().strip("<>") for part in mail["List-Unsubscribe"].split(",")
            )
            assert mailto.startswith("mailto:hello@northwind.example?subject=unsubscribe%20")
            assert https.startswith("https://orchestrator.example/v1/unsubscribe?")
            query = {k: v[0] for k, v in parse_qs(urlsplit(https).query).items()}
            assert (query["c"], query["ch"], query["m"]) == (
                customer,
                "email",
                record["message_id"],
            )
            links = UnsubscribeLinks(settings.public_url)
            async with redis_client(settings) as redis:
                await links.load(redis, RedisKeys(settings.redis_prefix))
            assert links.verify(customer, "email", query["s"])
            assert not links.verify("someone-else", "email", query["s"])
            assert not links.verify(customer, "sms", query["s"])

            # Receipts: message.sent on `events`, the provider outcome on `interactions`.
            values = await events.until(lambda vs: bool(_named(vs, MESSAGE_SENT)))
            [sent] = _named(values, MESSAGE_SENT)
            assert sent["customer_id"] == customer
            assert sent["properties"]["message_id"] == record["message_id"]
            assert (sent["properties"]["journey"], sent["properties"]["step"]) == (
                "conn-welcome",
                "welcome",
            )
            records = await log.until(
                lambda vs: any(isinstance(v, dict) and v.get("type") == "provider" for v in vs)
            )
            [provider] = [r for r in records if r.get("type") == "provider"]
            assert provider["outcome"] == "delivered"
            assert (provider["attempt"], provider["provider"]) == (1, "smtp")

            # The same outbound record delivered again (a redelivery) sends nothing more.
            await publish_outbound(settings, [record])
            await wait_until(lambda: caught_up(settings, "email"), "the email group caught up")
            assert len(mails.messages) == 1
