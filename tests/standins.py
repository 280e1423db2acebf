"""Local stand-ins for providers we cannot reach: Twilio's Messages API and webhook receivers.

They speak the providers' documented wire formats (status codes, JSON bodies, error codes)
and count what they received, so tests can say "delivered exactly once" at the provider.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

__all__ = ["Answer", "TwilioStandIn", "WebhookReceiver", "twilio_error"]

_E164 = re.compile(r"^(whatsapp:)?\+[1-9]\d{7,14}$")
_MORE_INFO = "https://www.twilio.com/docs/errors/{}"


@dataclass(frozen=True, slots=True)
class Answer:
    """A scripted answer: HTTP status, Twilio error code (None: success), Retry-After."""

    status: int
    code: int | None = None
    message: str = ""
    retry_after: str | None = None


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error body: `{"code", "message", "more_info", "status"}`."""
    return {
        "code": code,
        "message": message,
        "more_info": _MORE_INFO.format(code),
        "status": status,
    }


@dataclass
class TwilioStandIn:
    """`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with basic auth, like Twilio.

    `script[to]` answers requests for `to` in order (then success); while `down`, every
    request gets 503 (error 20503). `hold` (when given) keeps each request after the first
    `hold_after` accepted waiting until it is set, and such a request whose client went away
    meanwhile is not counted as accepted: the client never learned of it, as with a crash
    before the provider took it.
    """

    account_sid: str
    auth_token: str
    script: dict[str, list[Answer]] = field(default_factory=dict)
    down: bool = False
    hold: asyncio.Event | None = None
    hold_after: int = 0
    holding: int = 0
    held: list[web.Request] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    accepted: list[dict[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the base URL."""
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    def held_clients_gone(self) -> bool:
        """True once the client of every held request has closed its connection."""
        return all(r.transport is None or r.transport.is_closing() for r in self.held)

    def accepted_count(self) -> Counter[tuple[str, str]]:
        """How many times each (To, Body) was accepted."""
        return Counter((form["To"], form["Body"]) for form in self.accepted)

    async def _create(self, request: web.Request) -> web.Response:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        if (
            request.headers.get("Authorization") != f"Basic {expected}"
            or request.match_info["sid"] != self.account_sid
        ):
            return web.json_response(twilio_error(401, 20003, "Authenticate"), status=401)
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(form)
        to = form.get("To", "")
        self.arrivals.append((time.monotonic(), to))
        if not form.get("Body"):
            return web.json_response(
                twilio_error(400, 21602, "Message body is required."), status=400
            )
        if self.down:
            return web.json_response(twilio_error(503, 20503, "Service Unavailable"), status=503)
        scripted = self.script.get(to)
        if scripted:
            answer = scripted.pop(0)
            if answer.code is not None:
                headers = {"Retry-After": answer.retry_after} if answer.retry_after else None
                return web.json_response(
                    twilio_error(answer.status, answer.code, answer.message),
                    status=answer.status,
                    headers=headers,
                )
        if not _E164.match(to):
            return web.json_response(
                twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number."),
                status=400,
            )
        if self.hold is not None and len(self.accepted) >= self.hold_after:
            self.holding += 1
            self.held.append(request)
            await self.hold.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # nobody is listening any more
        self.accepted.append(form)
        return web.json_response(self._resource(form), status=201)

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + uuid.uuid4().hex
        now = format_datetime(datetime.now(UTC))
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": None,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued",
            "subresource_uris": {
                "media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"
            },
            "to": form["To"],
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }


@dataclass
class WebhookReceiver:
    """Records each POST's headers and raw body; answers `status`."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the hook URL."""
        app = web.Application()
        app.router.add_post("/hook", self._receive)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self.url

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)
