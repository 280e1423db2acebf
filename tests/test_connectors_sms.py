"""SMS and WhatsApp through a stand-in speaking Twilio's Messages API, errors included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from connectors.records import MESSAGE_FAILED, MESSAGE_SENT
from orchestrator.dev.standins.twilio import Answer, TwilioStandIn
from orchestrator.infra.settings import Settings
from tests.connector_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    caught_up,
    connector_settings,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import prepare, reader, wait_until


@pytest.fixture
async def twilio() -> Any:
    """A Twilio stand-in on a free port."""
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await standin.start()
    yield standin
    await standin.stop()


def _by_message(values: list[Any], name: str) -> dict[str, dict[str, Any]]:
    return {
        v["properties"]["message_id"]: v
        for v in values
        if isinstance(v, dict) and v.get("name") == name
    }


async def test_the_standin_answers_as_twilio_does(twilio: TwilioStandIn) -> None:
    """The official client parses the stand-in's answers, success and error alike."""

    def use_official_client() -> tuple[Any, TwilioRestException]:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = twilio.base_url
        created = client.messages.create(to="+15557654321", from_="+15550000001", body="hi")
        try:
            client.messages.create(to="+1555", from_="+15550000001", body="hi")
        except TwilioRestException as exc:
            return created, exc
        raise AssertionError("an invalid number was accepted")

    created, error = await asyncio.to_thread(use_official_client)
    assert created.sid.startswith("SM") and created.status == "queued"
    assert created.to == "+15557654321" and created.body == "hi"
    assert (error.status, error.code) == (400, 21211)


async def test_the_official_client_reads_the_standins_message_list(
    twilio: TwilioStandIn,
) -> None:
    """Twilio's list of messages, filtered and a page at a time, as the official client reads
    it (`connectors/sms.py` reads the same answers to find a message before sending again)."""

    def list_with_official_client() -> tuple[list[str], list[str]]:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = twilio.base_url
        sids = [
            client.messages.create(to=to, from_="+15550000001", body=body).sid
            for to, body in (
                ("+15557650001", "one"),
                ("+15557650002", "x"),
                ("+15557650001", "two"),
            )
        ]
        today = datetime.now(UTC).date()
        listed = client.messages.list(
            to="+15557650001", from_="+15550000001", date_sent_after=today, page_size=1
        )
        assert not client.messages.list(
            to="+15557650001", date_sent_after=today + timedelta(days=1)
        )
        return sids, [m.sid for m in listed]

    (first, _, second), listed = await asyncio.to_thread(list_with_official_client)
    assert listed == [second, first]  # newest first, one page each
    assert twilio.listings == 3  # two pages of one (following next_page_uri), then none


async def test_retries_then_delivers_once_and_fails_permanent_errors_at_once(
    infrastructure: Settings, twilio: TwilioStandIn
) -> None:
    settings = connector_settings(infrastructure, twilio_base=twilio.base_url)
    topics = await prepare(settings)
    flaky = outbound("c-flaky", "sms", "+15551230001", {"body": "your code is 1234"})
    invalid = outbound("c-invalid", "sms", "+1555", {"body": "hello"})
    limited = outbound("c-limited", "sms", "+15551230002", {"body": "slow down"})
    chat = outbound("c-chat", "whatsapp", "+15551230003", {"body": "hi on whatsapp"})
    twilio.script["+15551230001"] = [
        Answer(500, 20500, "Internal Server Error"),
        Answer(500, 20500, "Internal Server Error"),
    ]
    twilio.script["+15551230002"] = [Answer(429, 20429, "Too Many Requests", retry_after="1")]
    async with (
        running_connectors(settings, ["sms", "whatsapp"]),
        reader(settings, topics.events) as events,
        reader(settings, topics.interactions) as log,
    ):
        await publish_outbound(settings, [flaky, invalid, limited, chat])
        values = await events.until(
            lambda vs: (
                len(_by_message(vs, MESSAGE_SENT)) == 3
                and len(_by_message(vs, MESSAGE_FAILED)) == 1
            )
        )
        await wait_until(lambda: caught_up(settings, "sms"), "the sms group caught up")
        records = await log.until(lambda vs: len(vs) >= 7)

    accepted = twilio.accepted_count()
    assert accepted[("+15551230001", "your code is 1234")] == 1
    assert accepted[("+15551230002", "slow down")] == 1
    assert accepted[("whatsapp:+15551230003", "hi on whatsapp")] == 1
    assert sum(accepted.values()) == 3
    tries = [form["To"] for form in twilio.requests]
    assert tries.count("+15551230001") == 3  # 500, 500, 201
    assert tries.count("+1555") == 1  # 21211: never retried
    # Retry-After: 1 was honoured.
    arrivals = [at for at, to in twilio.arrivals if to == "+15551230002"]
    assert len(arrivals) == 2 and arrivals[1] - arrivals[0] >= 1.0
    chat_form = next(f for f in twilio.requests if f["To"].startswith("whatsapp:"))
    assert chat_form["From"] == "whatsapp:+15550000002"
    callback = urlsplit(chat_form["StatusCallback"])
    assert callback._replace(query="").geturl() == (
        "https://orchestrator.example/v1/webhooks/twilio/status"
    )
    assert dict(parse_qsl(callback.query))["message_id"] == chat["message_id"]

    sent = _by_message(values, MESSAGE_SENT)
    assert sent[flaky["message_id"]]["properties"]["provider_id"].startswith("SM")
    failed = _by_message(values, MESSAGE_FAILED)[invalid["message_id"]]
    assert failed["properties"]["error_code"] == "21211"
    assert (failed["properties"]["journey"], failed["properties"]["step"]) == (
        "test-journey",
        "hello",
    )

    flaky_records = [r for r in records if r.get("message_id") == flaky["message_id"]]
    assert [(r["attempt"], r["outcome"]) for r in flaky_records] == [
        (1, "retry"),
        (2, "retry"),
        (3, "delivered"),
    ]
    assert flaky_records[0]["error_code"] == "20500"
    [invalid_record] = [r for r in records if r.get("message_id") == invalid["message_id"]]
    assert (invalid_record["outcome"], invalid_record["error_code"]) == ("failed", "21211")
