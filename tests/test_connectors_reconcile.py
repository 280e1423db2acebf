"""Sending again after a try that may have reached Twilio: ask Twilio's list first.

A connector worker killed between Twilio's 201 and the done mark leaves the message's
in-flight note behind (its claim expires, the note stays): that state is written here
directly, then the next worker takes the message (`tests/test_fault_drills.py` gets there by
killing a worker for real).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from twilio.rest import Client

from connectors.records import MESSAGE_SENT
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
    running_twilio,
)
from tests.runtime_harness import prepare, reader, redis_client, wait_until

_FROM = "+15550000001"


async def _tried_before(settings: Settings, message: dict[str, Any], since: float) -> None:
    """What a worker killed after sending `message` at `since` leaves in Redis."""
    async with redis_client(settings) as redis:
        key = RedisKeys(settings.redis_prefix).delivery_in_flight(message["message_id"])
        await redis.set(key, str(int(since * 1000)).encode(), ex=3600)


async def _open_circuit(settings: Settings, provider: str, seconds: float) -> None:
    """`provider`'s circuit open for `seconds` (by Redis's clock, as the breaker reads it)."""
    async with redis_client(settings) as redis:
        now_s, now_us = await redis.time()
        until = now_s * 1000 + now_us // 1000 + int(seconds * 1000)
        key = RedisKeys(settings.redis_prefix).circuit(provider)
        await redis.hset(key, mapping={"state": "open", "open_until": until, "failures": 0})


def _create(twilio: TwilioStandIn, to: str, body: str) -> str:
    """The request of the killed worker, which Twilio took: the message exists there."""
    client = Client(ACCOUNT_SID, AUTH_TOKEN)
    client.api.base_url = twilio.base_url
    return str(client.messages.create(to=to, from_=_FROM, body=body).sid)


def _sent(values: list[Any]) -> dict[str, dict[str, Any]]:
    return {
        v["properties"]["message_id"]: v["properties"]
        for v in values
        if isinstance(v, dict) and v.get("name") == MESSAGE_SENT
    }


async def test_a_message_twilio_already_created_is_recorded_not_sent_again(
    infrastructure: Settings,
) -> None:
    async with running_twilio() as twilio:
        settings = connector_settings(infrastructure, twilio_base=twilio.base_url)
        topics = await prepare(settings)
        taken = outbound("c-taken", "sms", "+15552000001", {"body": "your code is 4821"})
        lost = outbound("c-lost", "sms", "+15552000002", {"body": "see you at 10"})
        older = outbound("c-older", "sms", "+15552000003", {"body": "same words again"})
        fresh = outbound("c-fresh", "sms", "+15552000004", {"body": "first try"})
        began = time.time()
        # Taken: Twilio created it after the dead worker's try began.
        sid = await asyncio.to_thread(_create, twilio, "+15552000001", "your code is 4821")
        await _tried_before(settings, taken, began - 1)
        # Lost: the dead worker's request never reached Twilio.
        await _tried_before(settings, lost, began)
        # Older: the same words to the same number long before this message's try: another
        # message, so this one is still sent.
        await asyncio.to_thread(_create, twilio, "+15552000003", "same words again")
        await _tried_before(settings, older, began + 60)
        async with (
            running_connectors(settings, ["sms"]),
            reader(settings, topics.events) as events,
            reader(settings, topics.interactions) as log,
        ):
            await publish_outbound(settings, [taken, lost, older, fresh])
            values = await events.until(lambda vs: len(_sent(vs)) == 4)
            await wait_until(lambda: caught_up(settings, "sms"), "the sms group caught up")
            records = await log.until(lambda vs: len(vs) >= 4)

        assert twilio.accepted_count() == {
            ("+15552000001", "your code is 4821"): 1,
            ("+15552000002", "see you at 10"): 1,
            ("+15552000003", "same words again"): 2,
            ("+15552000004", "first try"): 1,
        }
        assert _sent(values)[taken["message_id"]]["provider_id"] == sid
        by_message = {r["message_id"]: r for r in records}
        assert by_message[taken["message_id"]]["reconciled"] is True
        assert by_message[taken["message_id"]]["provider_id"] == sid
        for message in (lost, older, fresh):
            assert "reconciled" not in by_message[message["message_id"]]
        # Only the three messages with an earlier try were looked up.
        assert twilio.listings == 3


async def test_while_twilio_cannot_be_asked_the_message_waits_then_goes_once(
    infrastructure: Settings,
) -> None:
    async with running_twilio() as twilio:
        settings = connector_settings(infrastructure, twilio_base=twilio.base_url)
        topics = await prepare(settings)
        message = outbound("c-wait", "sms", "+15552000011", {"body": "held, not sent blind"})
        await _tried_before(settings, message, time.time())
        twilio.listing_down = True
        async with (
            running_connectors(settings, ["sms"]),
            reader(settings, topics.events) as events,
            reader(settings, topics.interactions) as log,
        ):
            await publish_outbound(settings, [message])
            await wait_until(lambda: twilio.listings >= 3, "the lookup was tried again")
            assert twilio.requests == []  # never sent while Twilio could not say
            twilio.listing_down = False
            await events.until(lambda vs: len(_sent(vs)) == 1)
            records = await log.until(lambda vs: any(r.get("outcome") == "delivered" for r in vs))

        assert twilio.accepted_count() == {("+15552000011", "held, not sent blind"): 1}
        retried = [r for r in records if r["outcome"] == "retry"]
        assert retried and {r["error_code"] for r in retried} == {"lookup_20503"}


async def test_a_message_that_waits_for_the_circuit_first_is_still_looked_up(
    infrastructure: Settings,
) -> None:
    # The fault drill's find: after a connector worker died, its messages met the rate
    # limit or an open circuit on their next claim; giving that claim up dropped the note,
    # and the claim after it sent the message blind.
    async with running_twilio() as twilio:
        settings = connector_settings(infrastructure, twilio_base=twilio.base_url)
        topics = await prepare(settings)
        message = outbound("c-waited", "sms", "+15552000021", {"body": "waited, then found"})
        began = time.time()
        sid = await asyncio.to_thread(_create, twilio, "+15552000021", "waited, then found")
        await _tried_before(settings, message, began - 1)
        await _open_circuit(settings, "twilio", seconds=1.0)
        async with (
            running_connectors(settings, ["sms"]),
            reader(settings, topics.events) as events,
            reader(settings, topics.interactions) as log,
        ):
            await publish_outbound(settings, [message])
            values = await events.until(lambda vs: len(_sent(vs)) == 1)
            records = await log.until(lambda vs: len(vs) >= 1)

        assert twilio.accepted_count() == {("+15552000021", "waited, then found"): 1}
        assert twilio.listings == 1
        assert _sent(values)[message["message_id"]]["provider_id"] == sid
        assert records[0]["reconciled"] is True
