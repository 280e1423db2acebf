"""A real SMTP server (aiosmtpd) standing in for the mail relay: keeps every message it takes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from orchestrator.dev.standins.local import free_port

__all__ = ["MailSink", "smtp_server"]


class MailSink:
    """An aiosmtpd handler keeping every message it is given (and its envelope sender, the
    `MAIL FROM` a bounce goes back to, in `senders`), and counting SMTP sessions (each
    connection's EHLO), so a sender's connection reuse shows."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.senders: list[str] = []
        self.sessions = 0

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        """Count a session: its first EHLO (STARTTLS starts a new one, counted again)."""
        if session.host_name is None:
            self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Keep the message, parsed, and its envelope sender."""
        content = cast(bytes, envelope.content)
        self.senders.append(envelope.mail_from or "")
        self.messages.append(message_from_bytes(content, policy=policy.default))
        return "250 Message accepted for delivery"


@contextlib.contextmanager
def smtp_server(sink: MailSink | None = None) -> Iterator[tuple[MailSink, int]]:
    """A real aiosmtpd server on a free port (its own thread), with its sink (`sink`, or a
    new `MailSink`)."""
    sink = sink or MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()
