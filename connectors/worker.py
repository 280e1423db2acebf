"""A connector worker: one `ChannelRunner` per channel it serves, sharing Redis and Kafka."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from connectors.base import Connector
from connectors.delivery import Delivery, DeliveryContext
from connectors.guards import CircuitBreaker, DeliveryMarks, RateLimiter
from connectors.inapp import InAppConnector
from connectors.mail import EmailConnector
from connectors.metrics import ConnectorMetrics
from connectors.push import FcmConnector
from connectors.records import ReceiptSink
from connectors.runner import ChannelRunner
from connectors.schedule import RetrySchedule
from connectors.sms import TwilioConnector
from connectors.verp import BounceAddresses
from connectors.webhook import WebhookConnector
from orchestrator.control.identity import IdentityIndex
from orchestrator.engine.events import Event
from orchestrator.errors import ConfigurationError
from orchestrator.infra.clock import Clock, ScaledClock
from orchestrator.infra.healthserver import HealthServer
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.outage import Health, load_at_start
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings, redacted_url
from orchestrator.infra.surveylinks import SurveyLinks
from orchestrator.infra.tracking import TrackingTokens
from orchestrator.infra.unsubscribe import UnsubscribeLinks

__all__ = ["CHANNELS", "ConnectorWorker", "configured_channels"]

log = logging.getLogger(__name__)

CHANNELS = ("email", "sms", "whatsapp", "webhook", "push", "in_app")
# Delivery marks outlive `outbound`'s retention (a week), so no redelivery can miss one.
_MARK_SECONDS = 8 * 24 * 3600.0


def configured_channels(settings: Settings) -> list[str]:
    """The channels whose settings are all present (the default of `orchestrator connectors`)."""
    present = {
        "email": bool(settings.smtp_from),
        "sms": bool(settings.twilio_account_sid and settings.twilio_auth_token)
        and bool(settings.twilio_from),
        "whatsapp": bool(settings.twilio_account_sid and settings.twilio_auth_token)
        and bool(settings.twilio_whatsapp_from),
        "webhook": settings.webhook_secret is not None,
        "push": bool(settings.fcm_project and settings.fcm_service_account),
        # Needs nothing but the Redis every worker has.
        "in_app": True,
    }
    return [channel for channel in CHANNELS if present[channel]]


def _connector(
    channel: str,
    settings: Settings,
    links: UnsubscribeLinks,
    surveys: SurveyLinks,
    *,
    tracking: TrackingTokens,
    bounces: BounceAddresses | None,
    publish: Callable[[list[Event]], Awaitable[None]],
) -> Connector:
    if channel == "email":
        track_email = tracking if settings.email_tracking else None
        return EmailConnector(settings, links, surveys, track_email, bounces)
    if channel in ("sms", "whatsapp"):
        track = tracking if settings.sms_link_tracking else None
        return TwilioConnector(settings, "sms" if channel == "sms" else "whatsapp", track)
    if channel == "webhook":
        return WebhookConnector(settings)
    if channel == "push":
        return FcmConnector(settings, publish)
    if channel == "in_app":
        return InAppConnector(settings)
    raise ConfigurationError(
        f"no connector for channel {channel!r}: use some of {', '.join(CHANNELS)}"
    )


class ConnectorWorker:
    """`async with ConnectorWorker(settings, channels) as worker: await worker.run()`."""

    def __init__(
        self, settings: Settings, channels: Sequence[str], clock: Clock | None = None
    ) -> None:
        if not channels:
            raise ConfigurationError(
                "no channel to serve: configure one (docs/channels.md) or pass --channels"
            )
        self.settings = settings
        self.channels = list(dict.fromkeys(channels))
        self.clock = clock or ScaledClock(settings.clock_speed, settings.clock_origin)
        self.keys = RedisKeys(settings.redis_prefix)
        self.links = UnsubscribeLinks(settings.public_url, settings.unsubscribe_key)
        self.survey_links = SurveyLinks(settings.public_url)
        self.tracking = TrackingTokens(settings.public_url, settings.tracking_key)
        self.bounces = (
            BounceAddresses(settings.bounce_domain, settings.tracking_key)
            if settings.bounce_domain
            else None
        )
        # Built first: a missing setting fails here, before anything connects.
        self.connectors = [
            _connector(
                c,
                settings,
                self.links,
                self.survey_links,
                tracking=self.tracking,
                bounces=self.bounces,
                publish=self._publish,
            )
            for c in self.channels
        ]
        # Long enough for one whole provider call: a claim (or a leased retry, or a
        # half-open probe) outlives any attempt still in flight.
        self.lease = 2 * settings.connector_timeout_s + 5
        self.health = Health(
            {"kafka": settings.kafka_bootstrap, "redis": redacted_url(settings.redis_url)}
        )
        self.redis: RedisClient | None = None
        self.sink = ReceiptSink(settings)
        self.runners: list[ChannelRunner] = []
        self.stopping = asyncio.Event()
        self.metrics = ConnectorMetrics()
        self.server = (
            HealthServer(
                self.health,
                self.metrics.registry,
                settings.health_host,
                settings.connector_metrics_port,
                port_setting="ORCHESTRATOR_CONNECTOR_METRICS_PORT",
                refresh=self._refresh_metrics,
            )
            if settings.connector_metrics_port
            else None
        )

    async def __aenter__(self) -> ConnectorWorker:
        settings = self.settings
        self.redis = redis = connect_redis(settings)
        try:
            # First: /health answers 503 `starting` while Kafka and Redis are reached.
            if self.server is not None:
                await self.server.start()
            # The links' signing keys are shared through Redis: wait for it, as every
            # process waits for its dependencies at start-up.
            await load_at_start(
                [
                    lambda: self.links.load(redis, self.keys),
                    lambda: self.survey_links.load(redis, self.keys),
                    lambda: self.tracking.load(redis, self.keys),
                ],
                dependency="redis",
                health=self.health,
                within_s=settings.startup_timeout_s,
                stopping=self.stopping,
            )
            if self.bounces is not None:
                await self.bounces.load(redis, self.keys)
            await self.sink.__aenter__()
            context = DeliveryContext(
                marks=DeliveryMarks(redis, self.keys, self.lease, _MARK_SECONDS),
                limiter=RateLimiter(redis, self.keys, settings.connector_rate_limits),
                breaker=CircuitBreaker(
                    redis,
                    self.keys,
                    settings.connector_breaker_failures,
                    settings.connector_breaker_open_s,
                    self.lease,
                ),
                sink=self.sink,
                clock=self.clock,
                max_attempts=settings.connector_max_attempts,
                retry_base=settings.connector_retry_base_s,
                retry_cap=settings.connector_retry_cap_s,
                metrics=self.metrics,
                identity=IdentityIndex(redis, self.keys),
            )
            for connector in self.connectors:
                schedule = RetrySchedule(redis, self.keys, connector.channel)
                runner = ChannelRunner(
                    settings,
                    Delivery(connector, schedule, context),
                    self.sink,
                    self.health,
                    self.lease,
                )
                await runner.start()
                self.runners.append(runner)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        self.health.set_phase("healthy")
        log.info("connector worker serving %s", ", ".join(self.channels))
        return self

    async def _refresh_metrics(self) -> None:
        if self.redis is not None:
            schedules = [runner.delivery.schedule for runner in self.runners]
            await self.metrics.refresh(self.redis, self.keys, schedules)

    async def _publish(self, events: list[Event]) -> None:
        """Events a channel decides on itself (push: a dead device's token removed)."""
        await self.sink.events.publish(events)
        await self.sink.events.flush()

    async def run(self) -> None:
        """Run every channel until `stop()`; one channel failing stops the worker."""
        await asyncio.gather(*(runner.run() for runner in self.runners))

    def stop(self) -> None:
        """Ask every channel to stop (idempotent)."""
        self.health.set_phase("stopping")
        self.stopping.set()
        for runner in self.runners:
            runner.stop()

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        for runner in self.runners:
            await runner.close()
        for connector in self.connectors:
            await connector.aclose()
        await self.sink.__aexit__(None, None, None)
        if self.redis is not None:
            await self.redis.aclose()
        if self.server is not None:
            await self.server.stop()
