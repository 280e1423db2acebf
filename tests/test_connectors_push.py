"""Push through a stand-in speaking FCM HTTP v1 and Google's OAuth2 token endpoint."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Permanent, Retry, read_outbound
from connectors.push import FcmConnector
from connectors.records import MESSAGE_FAILED, MESSAGE_SENT
from orchestrator.dev.standins.fcm import FcmAnswer, FcmStandIn, write_service_account
from orchestrator.engine.events import Event
from orchestrator.infra.settings import Settings
from tests.connector_harness import (
    caught_up,
    connector_settings,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import prepare, reader, wait_until

PROJECT = "northwind-app"


@pytest.fixture
async def fcm(tmp_path: Path) -> AsyncIterator[tuple[FcmStandIn, Path]]:
    """An FCM stand-in on a free port and a service account file it trusts."""
    standin = FcmStandIn(PROJECT)
    await standin.start()
    account = tmp_path / "service-account.json"
    standin.public_key = write_service_account(account, standin.token_url).public_key()
    yield standin, account
    await standin.stop()


def _push_settings(infrastructure: Settings, standin: FcmStandIn, account: Path) -> Settings:
    return connector_settings(
        infrastructure,
        fcm_project=PROJECT,
        fcm_api_base=standin.base_url,
        fcm_token_url=standin.token_url,
        fcm_service_account=str(account),
    )


def _named(values: list[Any], name: str) -> dict[str, dict[str, Any]]:
    return {
        v["properties"]["message_id"]: v
        for v in values
        if isinstance(v, dict) and v.get("name") == name
    }


async def test_delivers_once_retries_unavailable_and_drops_unregistered_tokens(
    infrastructure: Settings, fcm: tuple[FcmStandIn, Path]
) -> None:
    standin, account = fcm
    settings = _push_settings(infrastructure, standin, account)
    topics = await prepare(settings)
    content = {"title": "Your order shipped", "body": "It arrives Tuesday"}
    ok = outbound("c-ok", "push", "dev-ok", content)
    flaky = outbound("c-flaky", "push", "dev-flaky", content)
    gone = outbound("c-gone", "push", "dev-gone", content)
    bad = outbound("c-bad", "push", "not-a-device-token", content)
    standin.script["dev-flaky"] = [FcmAnswer("UNAVAILABLE", retry_after="1")]
    standin.unregistered.add("dev-gone")

    def settled(values: list[Any]) -> bool:
        removal = [v for v in values if v.get("name") == "profile.updated"]
        return (
            len(_named(values, MESSAGE_SENT)) == 2
            and len(_named(values, MESSAGE_FAILED)) == 2
            and len(removal) == 1
        )

    async with (
        running_connectors(settings, ["push"]),
        reader(settings, topics.events) as events,
    ):
        await publish_outbound(settings, [ok, flaky, gone, bad])
        values = await events.until(settled)
        await wait_until(lambda: caught_up(settings, "push"), "the push group caught up")

    accepted = Counter(m["token"] for m in standin.accepted)
    assert accepted == Counter({"dev-ok": 1, "dev-flaky": 1})
    tries = [device for _, device in standin.arrivals]
    assert tries.count("dev-flaky") == 2  # UNAVAILABLE, then 200
    assert tries.count("dev-gone") == 1 and tries.count("not-a-device-token") == 1
    flaky_at = [at for at, device in standin.arrivals if device == "dev-flaky"]
    assert flaky_at[1] - flaky_at[0] >= 1.0  # Retry-After: 1 was honoured
    # One OAuth token served every request: it is cached until it expires.
    assert len(standin.issued) == 1

    sent_message = next(m for m in standin.accepted if m["token"] == "dev-ok")
    assert sent_message["notification"] == content
    assert sent_message["data"]["message_id"] == ok["message_id"]
    sent = _named(values, MESSAGE_SENT)
    assert sent[ok["message_id"]]["properties"]["provider_id"].startswith(
        f"projects/{PROJECT}/messages/"
    )
    failed = _named(values, MESSAGE_FAILED)
    assert failed[gone["message_id"]]["properties"]["error_code"] == "UNREGISTERED"
    assert failed[bad["message_id"]]["properties"]["error_code"] == "INVALID_ARGUMENT"
    [removal] = [v for v in values if v.get("name") == "profile.updated"]
    assert removal["customer_id"] == "c-gone"
    assert removal["properties"] == {"push_token": None}


async def test_a_key_the_token_endpoint_does_not_trust_is_the_providers_trouble(
    infrastructure: Settings, fcm: tuple[FcmStandIn, Path], tmp_path: Path
) -> None:
    standin, _ = fcm
    stranger = tmp_path / "other-account.json"
    write_service_account(stranger, standin.token_url)  # a key the stand-in never saw
    settings = _push_settings(infrastructure, standin, stranger)
    published: list[Event] = []

    async def publish(events: list[Event]) -> None:
        published.extend(events)

    connector = FcmConnector(settings, publish)
    try:
        message = read_outbound(outbound("c-x", "push", "dev-x", {"title": "t", "body": "b"}))
        outcome = await connector.deliver(message)
        no_token = read_outbound(outbound("c-y", "push", None, {"title": "t", "body": "b"}))
        missing = await connector.deliver(no_token)
    finally:
        await connector.aclose()
    assert isinstance(outcome, Retry) and outcome.provider_trouble
    assert outcome.code == "oauth_token" and "Invalid JWT Signature" in outcome.reason
    assert missing == Permanent("no_address", "the customer's profile has no push_token")
    assert standin.requests == [] and published == []
