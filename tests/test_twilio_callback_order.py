"""Twilio status callbacks that come before Twilio's 201 answer still find their message.

Twilio promises no order between the answer to "create a message" and the callbacks about it,
so the connector names the message in the `StatusCallback` URL (Twilio signs the full URL).
The Twilio stand-in here calls back *before* it answers 201, against the API served on a real
socket; the signatures are Twilio's (`RequestValidator`, the official library).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import uvicorn
import yarl
from twilio.request_validator import RequestValidator

from connectors.records import MESSAGE_SENT
from orchestrator.api.app import create_app
from orchestrator.contracts.base import validate
from orchestrator.contracts.outbound import OUTBOUND_MESSAGE
from orchestrator.control.identity import SentMessage
from orchestrator.control.inbound import (
    MESSAGE_DELIVERED,
    message_of_callback,
    status_callback_url,
)
from orchestrator.dev.standins.local import free_port
from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.connector_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    connector_settings,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import prepare, reader, redis_client, wait_until

BASE = "https://orchestrator.example/v1/webhooks/twilio/status"


@contextlib.asynccontextmanager
async def _serving_api(settings: Settings, port: int) -> AsyncIterator[None]:
    """`orchestrator api`'s app on a real socket of this process, for the stand-in to call."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        await wait_until(lambda: server.started or task.done(), "the API serves")
        assert not task.done(), "the API did not start"
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


def _named(values: list[Any], name: str) -> list[dict[str, Any]]:
    return [v for v in values if isinstance(v, dict) and v.get("name") == name]


def test_the_callback_url_names_the_message_and_survives_normalising_clients() -> None:
    record = outbound("ada@example.com/é q+r&=#%", "sms", "+15551239000", {"body": "hi"})
    message = validate(OUTBOUND_MESSAGE, record, "outbound message")
    url = status_callback_url(BASE, message)
    # HTTP clients normalise URLs (aiohttp's yarl decodes `%40` to `@`...): this one is in
    # normal form already, so what Twilio signed is what reaches us.
    assert str(yarl.URL(url)) == url
    assert str(httpx.URL(url)) == url
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    assert message_of_callback(query) == SentMessage(
        message_id=message.message_id,
        customer_id="ada@example.com/é q+r&=#%",
        journey="test-journey",
        step="hello",
        channel="sms",
        instance_id=message.instance_id,
    )
    assert message_of_callback({}) is None


async def test_a_status_callback_before_the_201_finds_its_message(
    infrastructure: Settings,
) -> None:
    port = free_port()
    twilio = TwilioStandIn(
        ACCOUNT_SID, AUTH_TOKEN, status_callbacks=True, callbacks_first=True, callback_delay=0
    )
    await twilio.start()
    try:
        settings = connector_settings(
            infrastructure, twilio_base=twilio.base_url, public_url=f"http://127.0.0.1:{port}"
        )
        topics = await prepare(settings)
        message = outbound("cb-early", "sms", "+15551239001", {"body": "early"}, step="ask")
        async with (
            _serving_api(settings, port),
            running_connectors(settings, ["sms"]),
            reader(settings, topics.events) as events,
        ):
            await publish_outbound(settings, [message])
            values = await events.until(
                lambda vs: bool(_named(vs, MESSAGE_SENT) and _named(vs, MESSAGE_DELIVERED))
            )
            [form] = twilio.accepted
            callback = form["StatusCallback"]
            params = {
                "AccountSid": ACCOUNT_SID,
                "MessageSid": "SM" + "e" * 32,
                "MessageStatus": "delivered",
                "To": form["To"],
            }
            signature = RequestValidator(AUTH_TOKEN).compute_signature(callback, params)
            forged_url = callback.replace(message["message_id"], "f" * 32)
            async with httpx.AsyncClient(timeout=10) as client:
                headers = {"X-Twilio-Signature": signature}
                signed = await client.post(callback, data=params, headers=headers)
                forged = await client.post(forged_url, data=params, headers=headers)
            async with redis_client(settings) as redis:
                stats = await redis.hgetall(RedisKeys(settings.redis_prefix).inbound_stats())
    finally:
        await twilio.stop()

    # Both callbacks were answered 200, and before the 201 (the stand-in awaited them).
    assert twilio.callback_errors == []
    assert (twilio.callbacks["sent"], twilio.callbacks["delivered"]) == (1, 1)
    [sent] = _named(values, MESSAGE_SENT)
    [delivered] = _named(values, MESSAGE_DELIVERED)
    # The same customer's events share a partition: the receipt came first, as Twilio's did.
    assert values.index(delivered) < values.index(sent)
    properties = delivered["properties"]
    assert properties["provider_id"] == sent["properties"]["provider_id"]
    assert (properties["message_id"], properties["journey"], properties["step"]) == (
        message["message_id"],
        "test-journey",
        "ask",
    )
    assert (properties["instance_id"], properties["channel"]) == (message["instance_id"], "sms")
    assert delivered["customer_id"] == "cb-early"
    assert b"unknown_message" not in stats and "unknown_message" not in stats
    # The signature covers the query: Twilio's own signature of the URL is accepted, and the
    # same signature on a URL naming another message is refused.
    assert signed.status_code == 200
    assert (forged.status_code, forged.json()["code"]) == (403, "bad_signature")
