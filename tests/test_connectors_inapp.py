"""in_app: messages land in the customer's Redis inbox, the API lists, marks and streams them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from connectors.base import Delivered, read_outbound
from connectors.inapp import InAppConnector
from connectors.records import MESSAGE_SENT
from orchestrator import jsonwire
from orchestrator.control.inbox import Inbox, InboxMessage
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.settings import Settings
from tests.api_harness import bearer, role_keys
from tests.api_server import api_server
from tests.connector_harness import (
    connector_settings,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import prepare, reader, redis_client

CUSTOMER = "c-inbox"


async def _next_event(lines: AsyncIterator[str], seen: list[str]) -> dict[str, str]:
    """The next SSE event's fields (comment lines are kept in `seen`)."""
    fields: dict[str, str] = {}
    async for line in lines:
        if line.startswith(":"):
            seen.append(line)
        elif line:
            name, _, value = line.partition(": ")
            fields[name] = value
        elif fields:
            return fields
    raise AssertionError(f"the stream ended; comments seen: {seen}")


async def test_a_message_lands_in_the_inbox_is_listed_streamed_and_marked_read(
    infrastructure: Settings, tmp_path: Path
) -> None:
    settings = connector_settings(infrastructure, inbox_keepalive_s=0.2)
    topics = await prepare(settings)
    keys = await role_keys(settings)
    message = outbound(CUSTOMER, "in_app", None, {"title": "Welcome", "body": "Glad you came"})
    async with (
        api_server(settings, tmp_path / "api.log") as url,
        httpx.AsyncClient(base_url=url, headers=bearer(keys["publisher"]), timeout=30) as api,
        api.stream("GET", f"/v1/customers/{CUSTOMER}/inbox/stream") as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        comments: list[str] = []
        lines = stream.aiter_lines()
        # The stream listens once it says so: only then is the message sent.
        assert await anext(lines) == ": subscribed"
        async with (
            running_connectors(settings, ["in_app"]),
            reader(settings, topics.events) as events,
        ):
            await publish_outbound(settings, [message])
            async with asyncio.timeout(30):
                streamed = await _next_event(lines, comments)
            receipts = await events.until(lambda vs: any(v.get("name") == MESSAGE_SENT for v in vs))
            # Idle after that message: the stream sends keep-alive comments.
            async with asyncio.timeout(30):
                async for line in lines:
                    if line == ": keep-alive":
                        break

        assert streamed["event"] == "message" and streamed["id"] == message["message_id"]
        data = jsonwire.loads(streamed["data"])
        assert (data["title"], data["body"], data["read"]) == ("Welcome", "Glad you came", False)
        [sent] = [v for v in receipts if v.get("name") == MESSAGE_SENT]
        assert sent["properties"]["provider_id"] == message["message_id"]

        listed = (await api.get(f"/v1/customers/{CUSTOMER}/inbox")).json()
        assert listed["unread"] == 1
        [entry] = listed["messages"]
        assert entry["id"] == message["message_id"] and entry["at"] == message["at"]
        assert (entry["journey"], entry["step"]) == ("test-journey", "hello")
        read = await api.post(f"/v1/customers/{CUSTOMER}/inbox/{message['message_id']}/read")
        assert read.status_code == 200 and read.json()["read"] is True
        after = (await api.get(f"/v1/customers/{CUSTOMER}/inbox")).json()
        assert after["unread"] == 0 and after["messages"][0]["read"] is True
        unread = await api.get(f"/v1/customers/{CUSTOMER}/inbox", params={"unread_only": True})
        assert unread.json()["messages"] == []
        missing = await api.post(f"/v1/customers/{CUSTOMER}/inbox/nope/read")
        assert missing.status_code == 404 and missing.json()["code"] == "message_not_found"

    # A redelivered record adds nothing (and the read flag stays).
    connector = InAppConnector(settings)
    try:
        again = await connector.deliver(read_outbound(message))
    finally:
        await connector.aclose()
    assert again == Delivered(message["message_id"])
    async with redis_client(settings) as redis:
        kept = await Inbox(redis, RedisKeys(settings.redis_prefix), 100).list(CUSTOMER)
    assert [(m.id, m.read) for m in kept] == [(message["message_id"], True)]


async def test_an_inbox_keeps_only_the_newest_messages(infrastructure: Settings) -> None:
    settings = connector_settings(infrastructure)
    async with redis_client(settings) as redis:
        inbox = Inbox(redis, RedisKeys(settings.redis_prefix), 2)
        for n in range(4):
            added = await inbox.add("c-full", InboxMessage(f"m{n}", "t", "b", "at"), float(n))
            assert added
        assert not await inbox.add("c-full", InboxMessage("m3", "t", "b", "at"), 9.0)
        kept = await inbox.list("c-full")
        assert [m.id for m in kept] == ["m3", "m2"]
        assert await inbox.mark_read("c-full", "m0") is None  # trimmed
