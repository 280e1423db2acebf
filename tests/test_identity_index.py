"""The identity index follows profiles: a journey worker links each customer's `email`, `phone`
and `push_token` to them as profiles change, so a reply finds its customer before any message
was ever delivered to them, and a changed number moves the mapping.

A real journey worker applies the profile updates from Kafka; the inbound SMS is posted to the
API (in-process), signed with the official `twilio` library's `RequestValidator`.
"""

from __future__ import annotations

from typing import Any

import httpx
from twilio.request_validator import RequestValidator

from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.api_harness import api_client
from tests.connector_harness import ACCOUNT_SID, AUTH_TOKEN, connector_settings
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

INBOUND = "/v1/webhooks/twilio/inbound"

# An update_profile step changes an address too: the worker sees the profile, not the event.
SWITCH = journey_source(
    """
id: id-switch
name: Switch numbers
category: transactional
reentry: always
trigger:
  event: id.switch
steps:
  - id: switch
    update_profile: {phone: "{{ event.properties.number }}"}
"""
)


async def _reply(
    client: httpx.AsyncClient, settings: Settings, sender: str, text: str, sid: str
) -> None:
    form = {
        "AccountSid": ACCOUNT_SID,
        "MessageSid": sid,
        "From": sender,
        "To": "+15550000001",
        "Body": text,
    }
    signature = RequestValidator(AUTH_TOKEN).compute_signature(settings.public_url + INBOUND, form)
    answer = await client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200, answer.text


def _replies(values: list[Any]) -> dict[str, tuple[str, str]]:
    """provider id -> (customer, text) of each `message.replied` seen."""
    return {
        v["properties"]["provider_id"]: (v["customer_id"], v["properties"]["text"])
        for v in values
        if isinstance(v, dict) and v.get("name") == "message.replied"
    }


async def test_profile_updates_keep_the_index_so_replies_find_their_customer(
    infrastructure: Settings,
) -> None:
    settings = connector_settings(infrastructure)
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([SWITCH])
    keys = RedisKeys(settings.redis_prefix)
    first, second, third, fourth = (f"+1555333000{n}" for n in range(1, 5))

    async def owner(address: str) -> str | None:
        async with redis_client(settings) as redis:
            value = await redis.hget(keys.address(address), "customer_id")
        return value.decode() if isinstance(value, bytes) else value

    async with (
        running_worker(settings),
        api_client(settings) as client,
        reader(settings, topics.events) as events,
    ):
        await publish(
            settings,
            [
                make_event("id-ada", "profile.updated", {"phone": first, "email": "Ada@X.example"}),
                make_event("id-bob", "profile.updated", {"phone": second}),
            ],
        )
        await wait_until(
            lambda: _owned(owner, {first: "id-ada", second: "id-bob"}),
            "the worker linked both profiles' phones",
        )
        assert await owner("ada@x.example") == "id-ada"
        # Nothing was ever delivered to Ada, and her reply is hers.
        await _reply(client, settings, first, "hello from ada", "SMid0001")
        values = await events.until(lambda vs: "SMid0001" in _replies(vs))
        assert _replies(values)["SMid0001"] == ("id-ada", "hello from ada")

        # Ada changes number: the new one is hers, the old one nobody's.
        await publish(settings, [make_event("id-ada", "profile.updated", {"phone": third})])
        await wait_until(
            lambda: _owned(owner, {third: "id-ada", first: None}), "Ada's mapping moved"
        )
        await _reply(client, settings, first, "who is this", "SMid0002")
        await _reply(client, settings, third, "new number", "SMid0003")
        values = await events.until(lambda vs: "SMid0003" in _replies(vs))
        assert _replies(values)["SMid0003"] == ("id-ada", "new number")
        assert "SMid0002" not in _replies(values)
        async with redis_client(settings) as redis:
            assert await redis.hget(keys.inbound_stats(), "unknown_address") == b"1"

        # An update_profile step gives Bob's number to Ada: the index follows the last change.
        await publish(settings, [make_event("id-ada", "id.switch", {"number": second})])
        await wait_until(
            lambda: _owned(owner, {second: "id-ada", third: None}),
            "the update_profile step moved the mapping",
        )
        await _reply(client, settings, second, "it is ada now", "SMid0004")
        values = await events.until(lambda vs: "SMid0004" in _replies(vs))
        assert _replies(values)["SMid0004"] == ("id-ada", "it is ada now")
        # Bob moves on from that number: unlinking his old one leaves it Ada's.
        await publish(settings, [make_event("id-bob", "profile.updated", {"phone": fourth})])
        await wait_until(lambda: _owned(owner, {fourth: "id-bob"}), "Bob's new number is his")
        assert await owner(second) == "id-ada"


async def _owned(owner: Any, expected: dict[str, str | None]) -> bool:
    return all([await owner(address) == who for address, who in expected.items()])
