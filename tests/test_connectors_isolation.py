"""One provider's trouble never delays another channel; its messages wait, none is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.dev.standins.twilio import TwilioStandIn
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.connector_harness import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    ConnectorProcess,
    connector_settings,
    nothing_waits,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import prepare, redis_client, wait_until


@pytest.fixture
async def twilio() -> AsyncIterator[TwilioStandIn]:
    """A Twilio stand-in on a free port."""
    standin = TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN)
    await standin.start()
    yield standin
    await standin.stop()


async def _circuit_open(settings: Settings) -> bool:
    async with redis_client(settings) as redis:
        state = await redis.hget(RedisKeys(settings.redis_prefix).circuit("twilio"), "state")
    return state == b"open"


async def _all_marked(settings: Settings, message_ids: list[str]) -> bool:
    keys = RedisKeys(settings.redis_prefix)
    async with redis_client(settings) as redis:
        for message_id in message_ids:
            mark = await redis.get(keys.delivery_mark(message_id))
            if not isinstance(mark, bytes) or mark.startswith(b"claim:"):
                return False
    return True


async def test_an_sms_outage_opens_its_circuit_while_emails_keep_flowing(
    infrastructure: Settings, twilio: TwilioStandIn
) -> None:
    with smtp_server() as (mails, port):
        settings = connector_settings(
            infrastructure, smtp_port=port, twilio_base=twilio.base_url, connector_max_attempts=50
        )
        await prepare(settings)
        sms = [
            outbound(f"s{n}", "sms", f"+1555100{n:04d}", {"body": f"sms {n}"}) for n in range(10)
        ]
        emails = [
            outbound(f"e{n}", "email", f"e{n}@example.com", {"subject": f"mail {n}", "body": "hi"})
            for n in range(10)
        ]
        twilio.down = True
        async with running_connectors(settings, ["email", "sms"]):
            await publish_outbound(settings, sms)
            await wait_until(
                lambda: _circuit_open(settings), "the Twilio circuit opened", timeout=30
            )
            opened_at, tries_when_opened = asyncio.get_running_loop().time(), len(twilio.requests)
            await publish_outbound(settings, emails)
            await wait_until(lambda: len(mails.messages) == 10, "every email went out")
            assert twilio.down  # the emails did not wait for Twilio
            # While open, Twilio got at most one probe per open period (1 s), not a retry
            # per message.
            elapsed = asyncio.get_running_loop().time() - opened_at
            assert len(twilio.requests) - tries_when_opened <= elapsed / 1.0 + 1
            assert not twilio.accepted

            twilio.down = False
            await wait_until(lambda: len(twilio.accepted) >= 10, "every SMS went out")
            await wait_until(lambda: nothing_waits(settings, "sms"), "nothing waits")
        assert set(twilio.accepted_count().values()) == {1}
        assert {form["To"] for form in twilio.accepted} == {m["to"] for m in sms}
        assert sorted(m["Subject"] for m in mails.messages) == sorted(
            m["content"]["subject"] for m in emails
        )


async def test_a_killed_connector_worker_loses_nothing_and_sends_nothing_twice(
    infrastructure: Settings, twilio: TwilioStandIn, tmp_path: Path
) -> None:
    settings = connector_settings(infrastructure, twilio_base=twilio.base_url)
    await prepare(settings)
    messages = [
        outbound(f"k{n}", "sms", f"+1555200{n:04d}", {"body": f"kill test {n}"}) for n in range(30)
    ]
    # Requests after the 10th are held unanswered: the worker dies with them in flight.
    twilio.hold, twilio.hold_after = asyncio.Event(), 10
    first = ConnectorProcess(settings, "sms", tmp_path / "first.log")
    try:
        await publish_outbound(settings, messages)
        await wait_until(lambda: twilio.holding >= 1, "a request is in flight", timeout=60)
        # Kill it with requests in flight, but not between Twilio's 201 and the mark (the
        # fault drill kills it there, tests/test_fault_drills.py): every accepted message is
        # marked first, so this test checks the requests Twilio never took.
        ids = {m["to"]: m["message_id"] for m in messages}
        await wait_until(
            lambda: _all_marked(settings, [ids[f["To"]] for f in twilio.accepted]),
            "the accepted messages are marked delivered",
        )
        first.kill()
    finally:
        first.terminate()
    # The held requests' clients are gone: the stand-in does not count them as accepted.
    await wait_until(twilio.held_clients_gone, "the stand-in saw the connections close")
    twilio.hold.set()
    twilio.hold = None
    second = ConnectorProcess(settings, "sms", tmp_path / "second.log")
    try:
        await wait_until(lambda: len(twilio.accepted) >= 30, "every SMS went out", timeout=90)
        await wait_until(lambda: nothing_waits(settings, "sms"), "nothing waits")
    finally:
        second.terminate()
    counts = twilio.accepted_count()
    assert len(counts) == 30, first.log() + second.log()
    assert set(counts.values()) == {1}, counts
