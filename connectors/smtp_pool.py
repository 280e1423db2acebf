"""A few open SMTP sessions per connector worker, each carrying message after message.

Opening a session costs a TCP handshake, the greeting, EHLO, and with them STARTTLS and AUTH:
several round trips (and a TLS handshake) before a message's first byte, paid per email when
each had a session of its own. The pool keeps up to `ORCHESTRATOR_SMTP_CONNECTIONS` sessions
open (default: the channel's concurrency, as many as sent at once before, so no message waits
for a session) and sends each email on an idle one, the most recently used, so the others age
out; it opens one only when none is idle. A session unused for `ORCHESTRATOR_SMTP_IDLE_S` is
closed with QUIT.

A reused session may have been dropped by the server meanwhile (its idle timeout, a restart,
a per-session message limit answered with 421). An error answer means the server did not take
the message, and so does a disconnect before the message's content went out: in both cases
the message is sent again at once on another session, so the server's housekeeping is never
a failed attempt. A disconnect or timeout *after* the content went out is different: the
server may have taken the message, so the connector reports it (a retry through the durable
schedule; docs/channels.md, "the window between the provider and the mark").

A message's own refusal (a 5xx at RCPT TO, a 4xx at MAIL FROM) ends its transaction with RSET
(aiosmtplib sends one, and so do we, to know it worked): a session whose RSET fails is closed,
so one message's refusal never carries over to the next message on that session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from email.message import EmailMessage
from typing import Literal

import aiosmtplib
from aiosmtplib.typing import Default

from orchestrator.errors import OrchestratorError
from orchestrator.infra.settings import Settings

__all__ = ["SessionsBusyError", "SmtpSessionPool"]

log = logging.getLogger(__name__)

# 421: "service not available, closing transmission channel" (RFC 5321 4.2.3).
_CLOSING = 421


class SessionsBusyError(OrchestratorError):
    """Every SMTP session stayed busy for the provider timeout: try the message later."""


class _Session(aiosmtplib.SMTP):
    """One SMTP connection that notes whether the current message's content went out."""

    content_sent = False
    idle_since = 0.0

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109 - aiosmtplib's signature
    ) -> aiosmtplib.SMTPResponse:
        """DATA: from here on, a lost connection may have lost an accepted message."""
        self.content_sent = True
        return await super().data(message, timeout=timeout)


def _server_closing(exc: BaseException) -> bool:
    """A 421 answer: the server refuses this session, not the message."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return any(refused.code == _CLOSING for refused in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code == _CLOSING


def _refusal(exc: BaseException) -> bool:
    """The server's verdict on this message (the session itself is fine)."""
    return isinstance(exc, aiosmtplib.SMTPRecipientsRefused | aiosmtplib.SMTPResponseException)


class SmtpSessionPool:
    """Up to `ORCHESTRATOR_SMTP_CONNECTIONS` (else `_CONNECTOR_CONCURRENCY`) reusable
    sessions to the relay."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.idle_s = settings.smtp_idle_s
        self.timeout = settings.connector_timeout_s
        self.size = settings.smtp_connections or settings.connector_concurrency
        self.slots = asyncio.Semaphore(self.size)
        self.idle: list[_Session] = []  # the most recently used last
        self.opened = 0
        self.reaper: asyncio.Task[None] | None = None

    async def send(self, email: EmailMessage, sender: str | None = None) -> None:
        """Send `email` on a session, from the envelope sender `sender` (None: its `From`
        address); raises aiosmtplib's error when it is not accepted
        (`SMTPRecipientsRefused`, `SMTPResponseException`...), or `SessionsBusyError`.

        A reused session the server had dropped is replaced and the email sent again
        (nothing was accepted on it); a new session failing the same way raises.
        """
        try:
            await asyncio.wait_for(self.slots.acquire(), self.timeout)
        except TimeoutError:
            raise SessionsBusyError(
                f"all {self.size} SMTP sessions stayed busy for "
                f"{self.timeout:g} s; raise ORCHESTRATOR_SMTP_CONNECTIONS if the relay allows"
            ) from None
        try:
            while True:
                session, reused = self._idle_session(), True
                if session is None:
                    session, reused = await self._open(), False
                if await self._sent(session, email, sender, reused):
                    return
        finally:
            self.slots.release()

    async def _sent(
        self, session: _Session, email: EmailMessage, sender: str | None, reused: bool
    ) -> bool:
        """True once the server accepted `email`; False: the reused session was found
        dropped before it took anything (send again on another); else raises."""
        session.content_sent = False
        try:
            await session.send_message(email, sender=sender)
        except BaseException as exc:
            dropped = _server_closing(exc) or (
                isinstance(exc, ConnectionError) and not session.content_sent
            )
            if not dropped and _refusal(exc) and await self._reset(session):
                self._keep(session)
            else:
                session.close()
            if dropped and reused:
                log.info("SMTP session dropped by the server (%s): reconnecting", exc)
                return False
            raise
        self._keep(session)
        return True

    async def _reset(self, session: _Session) -> bool:
        """RSET after a refusal; False if the session cannot go on."""
        try:
            await session.rset()
        except (aiosmtplib.SMTPException, OSError):
            return False
        return True

    def _idle_session(self) -> _Session | None:
        """The most recently used idle session still open, closing any found dead."""
        while self.idle:
            session = self.idle.pop()
            if session.is_connected:
                return session
            session.close()
        return None

    async def _open(self) -> _Session:
        settings = self.settings
        password = settings.smtp_password
        session = _Session(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=None if password is None else password.get_secret_value(),
            use_tls=settings.smtp_security == "tls",
            start_tls=settings.smtp_security == "starttls",
            timeout=self.timeout,
        )
        try:
            # Greeting, EHLO, STARTTLS and AUTH, as configured.
            await session.connect()
        except BaseException:
            session.close()
            raise
        self.opened += 1
        return session

    def _keep(self, session: _Session) -> None:
        session.idle_since = time.monotonic()
        self.idle.append(session)
        if self.reaper is None or self.reaper.done():
            self.reaper = asyncio.create_task(self._close_idle(), name="smtp-idle-sessions")

    async def _close_idle(self) -> None:
        """While sessions are idle: close each unused for `idle_s` (checked every half)."""
        while self.idle:
            await asyncio.sleep(self.idle_s / 2)
            cutoff = time.monotonic() - self.idle_s
            stale = [s for s in self.idle if s.idle_since <= cutoff]
            self.idle = [s for s in self.idle if s.idle_since > cutoff]
            for session in stale:
                await _quit(session)

    async def aclose(self) -> None:
        """QUIT every idle session (a message in flight keeps its own to the end)."""
        if self.reaper is not None:
            self.reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reaper
        idle, self.idle = self.idle, []
        for session in idle:
            await _quit(session)


async def _quit(session: _Session) -> None:
    # A polite goodbye; a server that went away meanwhile needs none.
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await session.quit()
    session.close()
