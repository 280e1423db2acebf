"""`orchestrator bounces`: an SMTP server (aiosmtpd) reading the DSNs mailed to VERP addresses.

The bounce domain's MX points here. Each email went out from `b+<message id>.<mac>@<domain>`
(`connectors/verp.py`), so a delivery status notification mailed back names its message:

1. `RCPT TO`: only a bounce address we signed is taken; any other recipient is refused `550`
   (a forged or mangled one is counted and logged), so this is no open relay or mailbox.
2. `DATA`: the DSN is read (`connectors/dsn.py`). A hard or soft failure becomes
   `message.bounced` (`late: true`) for the message, found in the identity index as its
   receipts are, published to `events` before the server answers `250`. A report already
   published for that message is a duplicate (a relay delivering twice): nothing is published
   again, and the event's id (the message's) makes any race applied once by the workers.
   Delays, successes and mails without a delivery-status part (auto-replies) publish nothing.
3. Redis or Kafka away: `451`, so the sending server keeps the DSN and tries again later.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from aiosmtpd.smtp import SMTP, Envelope, Session
from prometheus_client import CollectorRegistry, Counter

from connectors.dsn import DeliveryReport, read_report
from connectors.records import late_bounce_event
from connectors.verp import BadBounceAddressError, BounceAddresses
from orchestrator.control.identity import IdentityIndex
from orchestrator.control.publisher import EventPublisher
from orchestrator.errors import ConfigurationError, OrchestratorError
from orchestrator.infra.clock import Clock, ScaledClock
from orchestrator.infra.healthserver import HealthServer
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.outage import Health, load_at_start
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings, redacted_url

__all__ = ["OUTCOMES", "BounceHandler", "BounceMetrics", "BounceReceiver", "serve_smtp"]

log = logging.getLogger(__name__)

# As long as delivery marks and the identity index: a DSN comes within days.
_KEEP_SECONDS = 8 * 24 * 3600
# What became of each DSN taken (`orchestrator_bounce_reports_total{outcome}`).
OUTCOMES = ("hard", "soft", "delayed", "delivered", "unparsed", "unknown_message", "duplicate")


class BounceMetrics:
    """The receiver's counters, on a registry of its own (served by `infra/healthserver.py`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.reports = Counter(
            "orchestrator_bounce_reports",
            "DSNs taken, by what came of them (hard, soft: published; delayed, delivered, "
            "unparsed, unknown_message, duplicate: not)",
            ["outcome"],
            registry=self.registry,
        )
        self.refused = Counter(
            "orchestrator_bounce_refused_recipients",
            "recipients refused at RCPT TO, by reason (forged: a bounce address with a wrong "
            "MAC; malformed; not_ours: any other address)",
            ["reason"],
            registry=self.registry,
        )


class BounceHandler:
    """The aiosmtpd handler: `handle_RCPT` admits our bounce addresses, `handle_DATA`
    publishes what the DSN reports."""

    def __init__(
        self,
        addresses: BounceAddresses,
        redis: RedisClient,
        keys: RedisKeys,
        *,
        publisher: EventPublisher,
        clock: Clock,
        metrics: BounceMetrics,
    ) -> None:
        self.addresses = addresses
        self.redis = redis
        self.keys = keys
        self.identity = IdentityIndex(redis, keys)
        self.publisher = publisher
        self.clock = clock
        self.metrics = metrics

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Take a bounce address we signed; refuse anything else with 550."""
        if not self.addresses.is_ours(address):
            self.metrics.refused.labels("not_ours").inc()
            return "550 5.1.1 No such user here: this server only takes bounces"
        try:
            self.addresses.message_of(address)
        except BadBounceAddressError as exc:
            reason = "forged" if exc.forged else "malformed"
            self.metrics.refused.labels(reason).inc()
            log.warning("refused %s bounce address from %s: %s", reason, session.peer, exc)
            return "550 5.7.1 Not a bounce address of ours"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        """Publish the DSN's bounce for each recipient's message; 451 while Redis or Kafka
        cannot be reached."""
        report = read_report(envelope.original_content or b"")
        try:
            for recipient in envelope.rcpt_tos:
                outcome = await self._publish(self.addresses.message_of(recipient), report)
                self.metrics.reports.labels(outcome).inc()
        except Exception:  # the DSN must not be lost: the sender keeps it and retries
            log.exception("could not handle a DSN for %s", ", ".join(envelope.rcpt_tos))
            return "451 4.3.0 Temporarily unable to process the report; try again later"
        return "250 OK: report taken"

    async def _publish(self, message_id: str, report: DeliveryReport | None) -> str:
        """Publish the report about `message_id`; returns what came of it (`OUTCOMES`)."""
        if report is None:
            log.info("DSN for %s without a delivery-status part: not read", message_id)
            return "unparsed"
        if report.verdict in ("delayed", "delivered"):
            return report.verdict
        mark = self.keys.bounce_report(message_id)
        if await self.redis.exists(mark):
            return "duplicate"
        sent = await self.identity.message_of(message_id)
        if sent is None:
            log.warning("DSN for %s: no such message in the identity index", message_id)
            return "unknown_message"
        event = late_bounce_event(sent, report, self.clock.now())
        refused = await self.publisher.publish_acked([event])
        if refused:
            raise OrchestratorError(f"Kafka refused the bounce event: {refused[0]}")
        # After the broker has it: a crash in between publishes again, applied once.
        await self.redis.set(mark, b"1", ex=_KEEP_SECONDS)
        log.info("%s bounce for %s: %s", report.verdict, message_id, report.status)
        return report.verdict


async def serve_smtp(handler: BounceHandler, host: str, port: int) -> asyncio.Server:
    """Listen for SMTP on `host`:`port` in this event loop; raises `ConfigurationError` if
    the port cannot be bound."""
    loop = asyncio.get_running_loop()
    # The greeting's name, looked up once (aiosmtpd would per connection).
    name = socket.getfqdn()
    try:
        return await loop.create_server(
            lambda: SMTP(handler, hostname=name, ident="orchestrator bounces"),
            host=host,
            port=port,
        )
    except OSError as exc:
        raise ConfigurationError(
            f"cannot take bounces on {host}:{port}: {exc.strerror}; set "
            "ORCHESTRATOR_BOUNCE_SMTP_HOST/_PORT to a free address"
        ) from exc


class BounceReceiver:
    """The `orchestrator bounces` process: `async with BounceReceiver(settings) as r:
    await r.run()` until `stop()`."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        if not settings.bounce_domain:
            raise ConfigurationError(
                "orchestrator bounces needs the bounce domain: set ORCHESTRATOR_BOUNCE_DOMAIN "
                "(e.g. bounces.northwind.example) for it and for the connectors"
            )
        self.settings = settings
        self.clock = clock or ScaledClock(settings.clock_speed, settings.clock_origin)
        self.keys = RedisKeys(settings.redis_prefix)
        self.addresses = BounceAddresses(settings.bounce_domain, settings.tracking_key)
        self.publisher = EventPublisher(settings, linger_ms=0)
        self.metrics = BounceMetrics()
        self.health = Health(
            {"kafka": settings.kafka_bootstrap, "redis": redacted_url(settings.redis_url)}
        )
        self.server: HealthServer | None = None
        if settings.bounce_metrics_port:
            self.server = HealthServer(
                self.health,
                self.metrics.registry,
                settings.health_host,
                settings.bounce_metrics_port,
                port_setting="ORCHESTRATOR_BOUNCE_METRICS_PORT",
            )
        self.redis: RedisClient | None = None
        self.smtp: asyncio.Server | None = None
        self.publishing = False
        self.stopping = asyncio.Event()

    async def __aenter__(self) -> BounceReceiver:
        settings = self.settings
        self.redis = redis = connect_redis(settings)
        try:
            if self.server is not None:
                await self.server.start()
            await load_at_start(
                [lambda: self.addresses.load(redis, self.keys)],
                dependency="redis",
                health=self.health,
                within_s=settings.startup_timeout_s,
                stopping=self.stopping,
            )
            await self.publisher.__aenter__()
            self.publishing = True
            handler = BounceHandler(
                self.addresses,
                redis,
                self.keys,
                publisher=self.publisher,
                clock=self.clock,
                metrics=self.metrics,
            )
            self.smtp = await serve_smtp(
                handler, settings.bounce_smtp_host, settings.bounce_smtp_port
            )
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.health.set_phase("healthy")
        log.info(
            "taking bounces for %s on %s:%d",
            self.addresses.domain,
            settings.bounce_smtp_host,
            settings.bounce_smtp_port,
        )
        return self

    async def run(self) -> None:
        """Serve until `stop()`."""
        await self.stopping.wait()

    def stop(self) -> None:
        """Ask the receiver to stop (idempotent)."""
        self.health.set_phase("stopping")
        self.stopping.set()

    async def __aexit__(self, *exc: object) -> None:
        if self.smtp is not None:
            self.smtp.close()
            await self.smtp.wait_closed()
        if self.publishing:
            self.publishing = False
            await self.publisher.__aexit__(None, None, None)
        else:
            # Never started (Redis stayed away): its unstarted producer is closed all the same.
            await self.publisher.producer.stop()
        if self.redis is not None:
            await self.redis.aclose()
        if self.server is not None:
            await self.server.stop()
