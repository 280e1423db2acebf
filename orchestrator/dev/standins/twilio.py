"""A local stand-in for Twilio: the Messages API, status callbacks and inbound messages.

It speaks Twilio's documented wire formats (status codes, JSON bodies, error codes) and counts
what it accepted, so tests and the demo can say "delivered exactly once" at the provider. Like
Twilio, it can call each message's `StatusCallback` (`sent`, then `delivered`) and post a
phone's inbound SMS to the number's webhook, both signed with `X-Twilio-Signature`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import aiohttp
from aiohttp import web

from orchestrator.dev.standins.local import serve_locally

__all__ = ["Answer", "TwilioStandIn", "twilio_error", "twilio_request_signature"]

_E164 = re.compile(r"^(whatsapp:)?\+[1-9]\d{7,14}$")
_MORE_INFO = "https://www.twilio.com/docs/errors/{}"


def twilio_request_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """`X-Twilio-Signature` as Twilio documents it ("Webhooks security"): the full URL, then
    each POST parameter's name and value in name order, HMAC-SHA1 with the auth token, base64.

    Written here from the documentation, independently of the API's verifier, so the demo
    checks that verifier rather than agreeing with itself.
    """
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


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
    before the provider took it. With `hold_accepted`, held requests are accepted first and
    only their answers wait: a client that dies meanwhile never learns Twilio has them.

    With `status_callbacks`, each accepted message's `StatusCallback` URL is called (signed)
    with `sent`, then `delivered` (`undelivered`, error 30003, for numbers in `unreachable`),
    each `callback_delay` seconds after the one before, as Twilio reports a message's progress
    later. With `callbacks_first` too, they are all answered before the API call that
    created the message is: Twilio guarantees no order, and this is the order that finds
    the sender knowing nothing yet of the message's `sid`.
    `inbound_url` is the numbers' "A message comes in" webhook `receive_sms` posts to.

    `GET` of the same URL lists the accepted messages (`created`) as Twilio does: newest
    first, filtered by `To`, `From`, `DateSent`, `DateSent<`, `DateSent>` (`YYYY-MM-DD`),
    `PageSize` at a time with `next_page_uri`; while `down` or `listing_down`, 503.
    """

    account_sid: str
    auth_token: str
    script: dict[str, list[Answer]] = field(default_factory=dict)
    down: bool = False
    hold: asyncio.Event | None = None
    hold_after: int = 0
    hold_accepted: bool = False
    holding: int = 0
    held: list[web.Request] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)
    arrivals: list[tuple[float, str]] = field(default_factory=list)
    accepted: list[dict[str, str]] = field(default_factory=list)
    created: list[dict[str, Any]] = field(default_factory=list)
    listing_down: bool = False
    listings: int = 0
    status_callbacks: bool = False
    callbacks_first: bool = False
    callback_delay: float = 0.5
    unreachable: set[str] = field(default_factory=set)
    inbound_url: str = ""
    callbacks: Counter[str] = field(default_factory=Counter)
    callback_errors: list[str] = field(default_factory=list)
    confirmations: list[tuple[str, str]] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _client: aiohttp.ClientSession | None = None
    _pending: set[asyncio.Task[None]] = field(default_factory=set)
    _inbound_sids: Iterator[int] = field(default_factory=itertools.count)
    base_url: str = ""

    async def start(self) -> str:
        """Serve on a free port of 127.0.0.1; returns the base URL."""
        # A connection per call, as Twilio's calls come: a reused keep-alive connection the
        # server has just closed would fail the call ("Server disconnected").
        self._client = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=30),
            connector=aiohttp.TCPConnector(force_close=True),
        )
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)
        app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", self._list)
        self._runner, self.base_url = await serve_locally(app)
        return self.base_url

    async def stop(self) -> None:
        """Stop serving (status callbacks still on their way are abandoned)."""
        for task in self._pending:
            task.cancel()
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def callbacks_pending(self) -> int:
        """Status callbacks not yet answered."""
        return len(self._pending)

    def held_clients_gone(self) -> bool:
        """True once the client of every held request has closed its connection."""
        return all(r.transport is None or r.transport.is_closing() for r in self.held)

    def accepted_count(self) -> Counter[tuple[str, str]]:
        """How many times each (To, Body) was accepted."""
        return Counter((form["To"], form["Body"]) for form in self.accepted)

    def _authenticated(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (
            request.headers.get("Authorization") == f"Basic {expected}"
            and request.match_info["sid"] == self.account_sid
        )

    async def _list(self, request: web.Request) -> web.Response:
        """Twilio's "Read multiple Message resources", one page of it."""
        if not self._authenticated(request):
            return web.json_response(twilio_error(401, 20003, "Authenticate"), status=401)
        self.listings += 1
        if self.down or self.listing_down:
            return web.json_response(twilio_error(503, 20503, "Service Unavailable"), status=503)
        query = request.query
        matching = [m for m in reversed(self.created) if _listed(m, query)]
        size = min(int(query.get("PageSize", "50")), 1000)
        page = int(query.get("Page", "0"))
        start = page * size
        messages = matching[start : start + size]
        filters = {k: v for k, v in query.items() if k not in ("Page", "PageSize", "PageToken")}
        path = request.path

        def page_uri(number: int, token: dict[str, str]) -> str:
            return f"{path}?{urlencode({**filters, 'PageSize': size, 'Page': number, **token})}"

        more = start + size < len(matching)
        next_token = {"PageToken": f"PA{messages[-1]['sid']}"} if messages else {}
        return web.json_response(
            {
                "end": start + max(len(messages) - 1, 0),
                "first_page_uri": page_uri(0, {}),
                "messages": messages,
                "next_page_uri": page_uri(page + 1, next_token) if more else None,
                "page": page,
                "page_size": size,
                "previous_page_uri": page_uri(page - 1, {}) if page else None,
                "start": start,
                "uri": page_uri(page, {}),
            }
        )

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authenticated(request):
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
        held = self.hold is not None and len(self.accepted) >= self.hold_after
        if held:
            self.holding += 1
            self.held.append(request)
        if held and not self.hold_accepted and self.hold is not None:
            await self.hold.wait()
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)  # nobody is listening any more
        self.accepted.append(form)
        resource = self._resource(form)
        # As listed later: Twilio has sent it by then.
        self.created.append({**resource, "date_sent": resource["date_created"], "status": "sent"})
        if held and self.hold_accepted and self.hold is not None:
            await self.hold.wait()  # created, its answer not yet given: the sender's window
        if self.status_callbacks and form.get("StatusCallback") and self.callbacks_first:
            # Twilio promises no order between its answer and its callbacks: the worst case.
            await self._report_status(form, resource["sid"])
        elif self.status_callbacks and form.get("StatusCallback"):
            task = asyncio.create_task(self._report_status(form, resource["sid"]))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        return web.json_response(resource, status=201)

    async def _report_status(self, form: dict[str, str], sid: str) -> None:
        """Twilio's status callbacks for one message: `sent`, then the final status."""
        final = "undelivered" if form["To"] in self.unreachable else "delivered"
        for status in ("sent", final):
            await asyncio.sleep(self.callback_delay)
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": "2010-04-01",
                "From": form.get("From", ""),
                "MessageSid": sid,
                "MessageStatus": status,
                "SmsSid": sid,
                "SmsStatus": status,
                "To": form["To"],
            }
            if status == "undelivered":
                params["ErrorCode"] = "30003"
            await self._post_signed(form["StatusCallback"], params)
            self.callbacks[status] += 1

    async def receive_sms(self, sender: str, to: str, body: str) -> str | None:
        """A phone texts `body` to our number `to`: post it to `inbound_url` as Twilio does.

        Returns the confirmation the TwiML answer asks Twilio to send back (None: none),
        kept in `confirmations` as a message Twilio sent to `sender`.
        """
        sid = f"SM{next(self._inbound_sids):032x}"
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": "2010-04-01",
            "Body": body,
            "From": sender,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        answer = await self._post_signed(self.inbound_url, params)
        if answer is None:
            return None
        # Our own API's TwiML, not untrusted input.
        messages = ElementTree.fromstring(answer).findall("Message")  # noqa: S314
        text = messages[0].text if messages else None
        if text is not None:
            self.confirmations.append((sender, text))
        return text

    async def _post_signed(self, url: str, params: dict[str, str]) -> str | None:
        """POST the form signed like Twilio; the answer's text (None, and noted, unless 200)."""
        assert self._client is not None, "start() the stand-in first"
        signature = twilio_request_signature(self.auth_token, url, params)
        try:
            async with self._client.post(
                url, data=params, headers={"X-Twilio-Signature": signature}
            ) as response:
                text = await response.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Twilio does not retry a failed callback either; it is noted, not raised.
            self.callback_errors.append(f"{url}: {exc!r}")
            return None
        if response.status != 200:
            self.callback_errors.append(f"{url}: {response.status} {text[:200]}")
            return None
        return text

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


def _listed(message: dict[str, Any], query: Mapping[str, str]) -> bool:
    """True if `message` passes the list's filters (`DateSent` compares whole UTC days:
    Twilio takes `YYYY-MM-DD`, its client sends `YYYY-MM-DDT00:00:00Z`)."""
    if any(key in query and message[key.lower()] != query[key] for key in ("To", "From")):
        return False
    day = parsedate_to_datetime(str(message["date_sent"])).date().isoformat()
    return bool(
        query.get("DateSent", day)[:10] == day
        and day >= query.get("DateSent>", day)[:10]
        and day <= query.get("DateSent<", day)[:10]
    )
