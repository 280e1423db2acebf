"""Redis lost after the provider took a message: the message is marked once Redis is back,
never sent again (a fault drill found it sent twice: the whole delivery was redone)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.infra.names import RedisKeys
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
from tests.outage_infra import in_thread, private_redis
from tests.runtime_harness import prepare, redis_client, wait_until


async def _marked_done(settings: Settings, message_id: str) -> bool:
    async with redis_client(settings) as redis:
        mark = await redis.get(RedisKeys(settings.redis_prefix).delivery_mark(message_id))
    return isinstance(mark, bytes) and not mark.startswith(b"claim:")


async def test_redis_away_when_the_provider_answers_does_not_send_the_message_again(
    infrastructure: Settings, tmp_path: Path
) -> None:
    redis, url = private_redis(tmp_path)
    await in_thread(redis.start)
    twilio = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await twilio.start()
    # The first request waits at the provider until released.
    twilio.hold, twilio.hold_after = asyncio.Event(), 0
    try:
        settings = connector_settings(
            infrastructure, twilio_base=twilio.base_url, redis_url=url, connector_timeout_s=30.0
        )
        await prepare(settings)
        message = outbound("away1", "sms", "+15553000001", {"body": "only once"})
        async with running_connectors(settings, ["sms"]) as worker:
            await publish_outbound(settings, [message])
            await wait_until(lambda: twilio.holding == 1, "the request is at the provider")
            await in_thread(redis.stop)
            twilio.hold.set()  # the provider takes it while Redis is away
            await wait_until(lambda: len(twilio.accepted) == 1, "the provider took it")
            await in_thread(redis.start)
            await wait_until(
                lambda: _marked_done(settings, message["message_id"]), "marked done", timeout=60
            )
            await wait_until(lambda: caught_up(settings, "sms"), "outbound committed")
            await wait_until(lambda: worker.health.state == "healthy", "the worker recovered")
        assert len(twilio.requests) == 1, twilio.requests
        assert twilio.accepted_count() == {("+15553000001", "only once"): 1}
    finally:
        await twilio.stop()
        await in_thread(redis.remove)
