"""The webhook channel signs per Standard Webhooks (the published library verifies it) and
posts only where `ORCHESTRATOR_WEBHOOK_ALLOWED_HOSTS` or a public address allows."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from connectors.records import MESSAGE_FAILED, MESSAGE_SENT
from orchestrator.dev.standins.webhook import WebhookReceiver
from orchestrator.infra.settings import Settings
from tests.connector_harness import (
    WEBHOOK_SECRET,
    connector_settings,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import prepare, reader, wait_until


async def test_a_webhook_is_signed_as_standard_webhooks_verify(infrastructure: Settings) -> None:
    receiver, gone = WebhookReceiver(), WebhookReceiver(status=410)
    await receiver.start()
    await gone.start()
    try:
        # The receivers are on 127.0.0.1: not public, so named by the operator.
        settings = connector_settings(infrastructure, webhook_allowed_hosts=["127.0.0.1"])
        topics = await prepare(settings)
        payload = {"type": "order.delayed", "data": {"order": "A-1", "days": 2}}
        message = outbound("w1", "webhook", None, {"url": receiver.url, "payload": payload})
        moved = outbound("w2", "webhook", None, {"url": gone.url, "payload": {"n": 1}})
        async with (
            running_connectors(settings, ["webhook"]),
            reader(settings, topics.events) as events,
        ):
            await publish_outbound(settings, [message, moved])
            await wait_until(lambda: len(receiver.received) == 1, "the webhook arrived")
            values = await events.until(
                lambda vs: {v["name"] for v in vs} >= {MESSAGE_SENT, MESSAGE_FAILED}
            )
        headers, body = receiver.received[0]
        assert headers["webhook-id"] == message["message_id"]
        assert Webhook(WEBHOOK_SECRET).verify(body, headers) == payload
        with pytest.raises(WebhookVerificationError):
            Webhook(WEBHOOK_SECRET).verify(body.replace(b"A-1", b"A-2"), headers)
        [failed] = [v for v in values if v["name"] == MESSAGE_FAILED]
        assert failed["properties"]["message_id"] == moved["message_id"]
        assert failed["properties"]["error_code"] == "410"
        assert len(gone.received) == 1  # 410 Gone: never retried
    finally:
        await receiver.stop()
        await gone.stop()


async def test_a_webhook_goes_nowhere_the_operator_did_not_allow(infrastructure: Settings) -> None:
    receiver = WebhookReceiver()
    await receiver.start()
    try:
        # No allow-list: a receiver on a loopback address (as a template could name from
        # customer data, or a cloud metadata address) is refused for good, never posted to.
        # An allow-list naming other hosts refuses this one too.
        for allowed, code in (([], "private_address"), (["*.example.com"], "host_not_allowed")):
            settings = connector_settings(infrastructure, webhook_allowed_hosts=allowed)
            topics = await prepare(settings)
            message = outbound("w-ssrf", "webhook", None, {"url": receiver.url, "payload": {}})
            async with (
                running_connectors(settings, ["webhook"]),
                reader(settings, topics.events) as events,
            ):
                await publish_outbound(settings, [message])
                values = await events.until(lambda vs: any(v["name"] == MESSAGE_FAILED for v in vs))
            [failed] = [v for v in values if v["name"] == MESSAGE_FAILED]
            assert failed["properties"]["error_code"] == code
        assert receiver.received == []
    finally:
        await receiver.stop()
