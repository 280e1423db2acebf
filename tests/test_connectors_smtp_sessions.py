"""Email goes out on a few reused SMTP sessions (aiosmtpd counts them), survives a server that
drops sessions, and one message's refusal never spoils the session for the next."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from connectors.base import Delivered, Permanent, Retry, read_outbound
from connectors.mail import EmailConnector
from connectors.records import MESSAGE_SENT
from orchestrator.dev.standins.smtp import MailSink, smtp_server
from orchestrator.infra.settings import Settings
from orchestrator.infra.surveylinks import SurveyLinks
from orchestrator.infra.unsubscribe import UnsubscribeLinks
from tests.connector_harness import (
    caught_up,
    connector_settings,
    outbound,
    publish_outbound,
    running_connectors,
)
from tests.runtime_harness import prepare, reader, wait_until
from tests.test_connectors_bounce import RefusingSink

# Messages a `DroppingSink` session carries before the server ends it.
_PER_SESSION = 3


class DroppingSink(MailSink):
    """Ends every session after `_PER_SESSION` messages, as relays with a per-session limit
    or a short idle timeout do: alternately by answering the next MAIL FROM `421` and closing,
    and by closing the connection without a word right after the last message's `250`."""

    def __init__(self) -> None:
        super().__init__()
        self.carried: Counter[int] = Counter()
        self.refused_421 = 0
        self.hung_up = 0

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        """421 and hang up once the session carried its share; else accept the sender."""
        if self.carried[id(session)] >= _PER_SESSION:
            self.refused_421 += 1
            asyncio.get_running_loop().call_soon(_hang_up, server)
            return "421 4.7.0 too many messages in one session, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Keep the message; every other full session is then closed at once, unannounced."""
        answer = await super().handle_DATA(server, session, envelope)
        self.carried[id(session)] += 1
        if self.carried[id(session)] == _PER_SESSION and self.refused_421 % 2 == self.hung_up % 2:
            self.hung_up += 1
            asyncio.get_running_loop().call_soon(_hang_up, server)
        return answer


def _hang_up(server: SMTP) -> None:
    # After the answer just written has gone (close flushes the write buffer first).
    if server.transport is not None:
        server.transport.close()


def _connector(settings: Settings) -> EmailConnector:
    key = SecretStr("k" * 32)
    return EmailConnector(
        settings, UnsubscribeLinks(settings.public_url, key), SurveyLinks(settings.public_url)
    )


def _emails(count: int, prefix: str) -> list[dict[str, Any]]:
    return [
        outbound(f"{prefix}-{n}", "email", f"{prefix}{n}@example.com", {"subject": f"n{n}"})
        for n in range(count)
    ]


def _received(sink: MailSink) -> Counter[str]:
    """How many times the server took each message (by its `Message-ID`'s message id)."""
    return Counter(str(m["Message-ID"]).strip("<>").partition("@")[0] for m in sink.messages)


async def test_many_emails_share_a_few_sessions_and_a_dropping_server_loses_nothing(
    infrastructure: Settings,
) -> None:
    count = 40
    with smtp_server(DroppingSink()) as (sink, port):
        assert isinstance(sink, DroppingSink)
        settings = connector_settings(infrastructure, smtp_port=port, smtp_connections=4)
        topics = await prepare(settings)
        emails = _emails(count, "pool")
        async with (
            running_connectors(settings, ["email"]),
            reader(settings, topics.events) as events,
            reader(settings, topics.interactions) as log,
        ):
            await publish_outbound(settings, emails)
            values = await events.until(
                lambda vs: len([v for v in vs if v.get("name") == MESSAGE_SENT]) >= count
            )
            await wait_until(lambda: caught_up(settings, "email"), "the email group caught up")
            records = await log.until(lambda rs: len(rs) >= count)

    ids = [e["message_id"] for e in emails]
    # Each email taken by the server exactly once, and sent once by our account.
    assert _received(sink) == Counter(ids)
    sent = Counter(v["properties"]["message_id"] for v in values if v.get("name") == MESSAGE_SENT)
    assert sent == Counter(ids)
    # The server's housekeeping is not a failed try: one delivered record per message.
    assert sorted((r["message_id"], r["attempt"], r["outcome"]) for r in records) == sorted(
        (i, 1, "delivered") for i in ids
    )
    # The server ended sessions both ways, and still every session carried several
    # messages: far fewer sessions than messages.
    assert sink.refused_421 >= 1 and sink.hung_up >= 1
    assert sink.sessions <= count // _PER_SESSION + 4 < count


async def test_emails_reuse_one_session_and_refusals_do_not_spoil_it(
    infrastructure: Settings,
) -> None:
    with smtp_server(RefusingSink()) as (sink, port):
        settings = connector_settings(infrastructure, smtp_port=port, smtp_connections=1)
        connector = _connector(settings)
        addresses = ["a@example.com", "gone@example.com", "b@example.com", "full@example.com"]
        messages = [
            read_outbound(outbound(f"c{n}", "email", to, {"subject": "hi"}))
            for n, to in enumerate([*addresses, "c@example.com"])
        ]
        try:
            outcomes = [await connector.deliver(m) for m in messages]
        finally:
            await connector.aclose()
    assert [type(o) for o in outcomes] == [Delivered, Permanent, Delivered, Retry, Delivered]
    assert isinstance(outcomes[1], Permanent) and outcomes[1].bounce == "hard"
    assert isinstance(outcomes[3], Retry) and outcomes[3].bounce == "soft"
    assert sorted(_received(sink)) == sorted(messages[n].message_id for n in (0, 2, 4))
    assert sink.sessions == 1


async def test_a_session_idle_past_the_setting_is_closed(infrastructure: Settings) -> None:
    with smtp_server() as (sink, port):
        settings = connector_settings(infrastructure, smtp_port=port, smtp_idle_s=0.2)
        connector = _connector(settings)
        first, second = (read_outbound(m) for m in _emails(2, "idle"))
        try:
            assert isinstance(await connector.deliver(first), Delivered)
            pool = connector.sessions
            await wait_until(lambda: not pool.idle, "the idle session was closed")
            assert isinstance(await connector.deliver(second), Delivered)
        finally:
            await connector.aclose()
    assert sink.sessions == 2 and pool.opened == 2
    assert sorted(_received(sink)) == sorted([first.message_id, second.message_id])
