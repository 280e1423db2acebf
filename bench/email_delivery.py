"""Email connector benchmark: emails per second into a local SMTP server (aiosmtpd).

    .venv/bin/python bench/email_delivery.py [--emails 1000] [--concurrency 16] [--rtt-ms 0]

Delivers `--emails` multipart messages (headers, List-Unsubscribe, tracked links: everything a
journey's email carries) through one `EmailConnector`, `--concurrency` at once (a connector
worker's `ORCHESTRATOR_CONNECTOR_CONCURRENCY`), to a real aiosmtpd server running in a thread of
this process, and reports emails per second and how many SMTP sessions the server saw. With
`--rtt-ms`, a relay in this process delays every byte between the two by half that each way,
as a relay across a network would (a local one answers in microseconds, where the round trips
a session saves cost nothing). No Kafka, no Redis: this measures the connector and its SMTP
sessions, not the delivery loop. Pool size: `ORCHESTRATOR_SMTP_CONNECTIONS`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from pydantic import SecretStr

from connectors.base import Delivered, OutboundMessage
from connectors.mail import EmailConnector
from orchestrator.dev.standins.smtp import MailSink, smtp_server
from orchestrator.engine.actions import Sent
from orchestrator.infra.settings import Settings
from orchestrator.infra.surveylinks import SurveyLinks
from orchestrator.infra.tracking import TrackingTokens
from orchestrator.infra.unsubscribe import UnsubscribeLinks

_BODY = "Hello {n},\n\nyour order has shipped: https://shop.example/orders/{n}\n\nThanks!"


class _CountingSink(MailSink):
    """Counts messages without parsing them: the relay's CPU is not what is measured."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Count the message."""
        self.received += 1
        return "250 Message accepted for delivery"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Forward bytes, each chunk `delay` after it arrived (in order, not one at a time)."""
    chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def forward() -> None:
        while True:
            due, chunk = await chunks.get()
            await asyncio.sleep(max(due - time.monotonic(), 0))
            if not chunk:
                writer.close()
                return
            writer.write(chunk)
            await writer.drain()

    task = asyncio.create_task(forward())
    while chunk := await reader.read(65536):
        chunks.put_nowait((time.monotonic() + delay, chunk))
    chunks.put_nowait((time.monotonic() + delay, b""))
    await task


@contextlib.asynccontextmanager
async def _latency(port: int, rtt: float) -> AsyncIterator[int]:
    """A TCP relay to `port` adding `rtt` per round trip; yields its port."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        # Cancelled when the relay stops with sessions still closing: nothing to report.
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await asyncio.gather(
                _pump(reader, upstream_writer, rtt / 2), _pump(upstream_reader, writer, rtt / 2)
            )

    server = await asyncio.start_server(connection, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


def _message(n: int) -> OutboundMessage:
    sent = Sent(
        at=time.time(),
        customer_id=f"bench-{n}",
        journey="bench",
        version=1,
        instance_id=uuid.uuid4().hex[:12],
        step="shipped",
        channel="email",
        template="shipped",
        variant=None,
        content={"subject": f"Order {n} shipped", "body": _BODY.format(n=n)},
        to=f"customer{n}@example.com",
        message_id=uuid.uuid4().hex,
        category="transactional",
        consent="not_set",
    )
    return OutboundMessage.of(sent, f"bench-{n}")


async def _run(emails: int, concurrency: int, rtt: float) -> None:
    sink = _CountingSink()
    with smtp_server(sink) as (_, server_port):
        async with contextlib.AsyncExitStack() as stack:
            port = server_port
            if rtt:
                port = await stack.enter_async_context(_latency(server_port, rtt))
            delivered, elapsed = await _deliver(port, emails, concurrency)
    print(
        f"{delivered}/{emails} emails in {elapsed:.2f} s: {delivered / elapsed:.0f} emails/s "
        f"(concurrency {concurrency}, rtt {rtt * 1000:g} ms, {sink.sessions} SMTP sessions, "
        f"{sink.received} received)"
    )


async def _deliver(port: int, emails: int, concurrency: int) -> tuple[int, float]:
    """Deliver the emails through one connector: how many went, and the seconds it took."""
    settings = Settings().model_copy(
        update={"smtp_port": port, "smtp_from": "Bench <bench@northwind.example>"}
    )
    key = SecretStr(uuid.uuid4().hex)
    connector = EmailConnector(
        settings,
        UnsubscribeLinks(settings.public_url, key),
        SurveyLinks(settings.public_url),
        TrackingTokens(settings.public_url, key),
    )
    messages = [_message(n) for n in range(emails)]
    slots = asyncio.Semaphore(concurrency)

    async def one(message: OutboundMessage) -> bool:
        async with slots:
            return isinstance(await connector.deliver(message), Delivered)

    started = time.perf_counter()
    try:
        delivered = sum(await asyncio.gather(*(one(m) for m in messages)))
    finally:
        await connector.aclose()
    return delivered, time.perf_counter() - started


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="simulated round trip")
    args = parser.parse_args()
    asyncio.run(_run(args.emails, args.concurrency, args.rtt_ms / 1000))


if __name__ == "__main__":
    main()
