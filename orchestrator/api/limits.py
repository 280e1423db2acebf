"""Request limits: 413 over `ORCHESTRATOR_API_MAX_BODY_BYTES` (before and after gzip), and
429 over `ORCHESTRATOR_API_MAX_INFLIGHT_INGEST` ingest requests at once."""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator import jsonwire
from orchestrator.api.errors import ApiError

__all__ = ["BodyLimitMiddleware", "InflightLimit", "gunzip", "too_large"]

# What a shed client is told to wait: a second lets the requests in hand finish.
_RETRY_AFTER_SECONDS = "1"


def too_large(limit: int) -> ApiError:
    """The 413 for a body over `limit` bytes."""
    return ApiError(
        413,
        "body_too_large",
        f"the request body is over {limit:,} bytes: send fewer events per request",
    )


class BodyLimitMiddleware:
    """Refuses bodies over the limit by Content-Length at once, or as they stream in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _send_413(send, self.limit)
            return
        seen = 0

        async def receiving() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    # Raised inside the route's body read: the error handler answers 413.
                    raise too_large(self.limit)
            return message

        await self.app(scope, receiving, send)


async def _send_413(send: Send, limit: int) -> None:
    error = too_large(limit)
    body = jsonwire.dumps({"code": error.code, "message": str(error)})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class InflightLimit:
    """Counts the requests in progress; one over `limit` (0: none) is refused with 429.

    Shedding at once, rather than queueing without bound, keeps latency bounded for the
    requests in hand, and Segment SDKs retry a 429 after `Retry-After`.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for the block; raises the 429 `overloaded` if none is free."""
        if self.limit and self.count >= self.limit:
            raise ApiError(
                429,
                "overloaded",
                f"this API process is serving {self.count} ingest requests, its limit: "
                f"retry after {_RETRY_AFTER_SECONDS} s (or spread the load over more processes)",
                headers={"Retry-After": _RETRY_AFTER_SECONDS},
            )
        self.count += 1
        try:
            yield
        finally:
            self.count -= 1


def gunzip(body: bytes, limit: int) -> bytes:
    """Inflate a gzip body, refusing (413) one that inflates past `limit` (a zip bomb)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, "bad_gzip", f"the gzip body cannot be inflated ({exc})") from exc
    if len(data) > limit or inflater.unconsumed_tail:
        raise too_large(limit)
    return data
