"""Email connector benchmark: emails per second into a local SMTP server (aiosmtpd).

    .venv/bin/python bench/email_delivery.py [--emails 1000] [--concurrency 16]

Delivers `--emails` multipart messages (headers, List-Unsubscribe, tracked links: everything a
journey's email carries) through one `EmailConnector`, `--concurrency` at once (a connector
worker's `ORCHESTRATOR_CONNECTOR_CONCURRENCY`), to a real aiosmtpd server running in a thread of
this process, and reports emails per second and how many SMTP sessions the server saw. No
Kafka, no Redis: this measures the connector and its SMTP sessions, not the delivery loop.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from pydantic import SecretStr

from connectors.base import Delivered, OutboundMessage
from connectors.mail import EmailConnector
from orchestrator.dev.standins.smtp import smtp_server
from orchestrator.engine.actions import Sent
from orchestrator.infra.settings import Settings
from orchestrator.infra.surveylinks import SurveyLinks
from orchestrator.infra.tracking import TrackingTokens
from orchestrator.infra.unsubscribe import UnsubscribeLinks

_BODY = "Hello {n},\n\nyour order has shipped: https://shop.example/orders/{n}\n\nThanks!"


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


async def _run(emails: int, concurrency: int) -> None:
    with smtp_server() as (sink, port):
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
        delivered = sum(await asyncio.gather(*(one(m) for m in messages)))
        elapsed = time.perf_counter() - started
        await connector.aclose()
        received = len(sink.messages)
    print(
        f"{delivered}/{emails} emails delivered in {elapsed:.2f} s: {delivered / elapsed:.0f} "
        f"emails/s, concurrency {concurrency}, {sink.sessions} SMTP sessions, "
        f"{received} received"
    )


def main() -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(_run(args.emails, args.concurrency))


if __name__ == "__main__":
    main()
