"""What one API process holds: settings, one Redis client, one long-lived event producer,
the journey operations' own Redis client and deploy-log producer, and a small pool of
PostgreSQL connections to the audit store.

Nothing here must be shared with another API process: keys live in Redis, events go to
Kafka. The producer is started lazily (and again after a failed start), so the API answers
(with 503s) while Kafka is away at start-up and recovers without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiokafka.errors import KafkaError
from fastapi import Request
from redis.exceptions import RedisError

from orchestrator.api.database import AuditDatabase
from orchestrator.api.limits import InflightLimit
from orchestrator.api.metrics import ApiMetrics
from orchestrator.api.redaction import Redactor
from orchestrator.audit.personal import PersonalFields
from orchestrator.control.identity import IdentityIndex
from orchestrator.control.keys import KeyStore
from orchestrator.control.operations import JourneyOperations
from orchestrator.control.publisher import EventPublisher
from orchestrator.control.segment import load_name_map
from orchestrator.errors import DependencyUnavailableError
from orchestrator.infra.clock import ScaledClock
from orchestrator.infra.names import RedisKeys
from orchestrator.infra.reach import KAFKA_FIX, REDIS_FIX, kafka_failure, redis_failure
from orchestrator.infra.redisclient import RedisClient, connect_redis
from orchestrator.infra.settings import Settings, redacted_url
from orchestrator.infra.surveylinks import SurveyLinks
from orchestrator.infra.tracking import TrackingTokens
from orchestrator.infra.unsubscribe import UnsubscribeLinks

__all__ = ["REDIS_CALL_SECONDS", "AppState", "app_state"]

# A request waits at most this long for Redis (a key check, a state read) before its 503.
REDIS_CALL_SECONDS = 2.0
# A journey call waits this long for another operator action to finish (409 after).
_LOCK_WAIT_SECONDS = 10.0


class AppState:
    """Per-process clients and configuration, created in the app's lifespan.

    `operations` serves every journey call; the lifespan enters it (its connections open on
    first use) and leaves it on shutdown.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = RedisKeys(settings.redis_prefix)
        self.clock = ScaledClock(settings.clock_speed, settings.clock_origin)
        self.names = load_name_map(settings.api_event_names)
        self.metrics = ApiMetrics()
        self.ingesting = InflightLimit(settings.api_max_inflight_ingest)
        self.redis: RedisClient = connect_redis(settings)
        self.key_store = KeyStore(self.redis, self.keys)
        # Webhooks in: replies find their customer in the index; links are checked here.
        self.identity = IdentityIndex(self.redis, self.keys)
        self.links = UnsubscribeLinks(settings.public_url, settings.unsubscribe_key)
        self.survey_links = SurveyLinks(settings.public_url)
        self.tracking = TrackingTokens(settings.public_url, settings.tracking_key)
        self.operations = JourneyOperations(settings, lock_wait=_LOCK_WAIT_SECONDS)
        # The audit store (its connections open on first use) and who sees personal fields.
        self.database = AuditDatabase(settings.database_url)
        self.personal = PersonalFields.from_setting(settings.audit_personal_fields)
        self.redactor = Redactor.from_setting(settings.audit_personal_fields)
        self._publisher: EventPublisher | None = None
        self._starting = asyncio.Lock()

    async def publisher(self) -> EventPublisher:
        """The started producer; starts it first if needed, within the publish timeout."""
        async with self._starting:
            if self._publisher is None:
                publisher = EventPublisher(self.settings, linger_ms=2)
                try:
                    async with asyncio.timeout(self.settings.api_publish_timeout_s):
                        await publisher.producer.start()
                except (KafkaError, OSError, TimeoutError) as exc:
                    with contextlib.suppress(KafkaError, OSError, TimeoutError):
                        async with asyncio.timeout(2):
                            await publisher.producer.stop()
                    raise kafka_failure(self.settings.kafka_bootstrap, exc) from exc
                self._publisher = publisher
            return self._publisher

    @contextlib.asynccontextmanager
    async def kafka_call(self) -> AsyncIterator[None]:
        """Bound a Kafka round trip by the publish timeout; failures become typed 503s."""
        try:
            async with asyncio.timeout(self.settings.api_publish_timeout_s):
                yield
        except TimeoutError as exc:
            raise DependencyUnavailableError(
                "Kafka",
                self.settings.kafka_bootstrap,
                KAFKA_FIX,
                f"no acknowledgement in {self.settings.api_publish_timeout_s:g} s",
            ) from exc
        except KafkaError as exc:
            raise kafka_failure(self.settings.kafka_bootstrap, exc) from exc

    @contextlib.asynccontextmanager
    async def redis_call(self) -> AsyncIterator[None]:
        """Bound a Redis round trip; failures become typed 503s."""
        try:
            async with asyncio.timeout(REDIS_CALL_SECONDS):
                yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise redis_failure(self.settings.redis_url, exc) from exc

    @contextlib.asynccontextmanager
    async def call(self, seconds: float | None = None) -> AsyncIterator[None]:
        """Bound work touching both Kafka and Redis; either's failure becomes a typed 503."""
        limit = seconds or self.settings.api_publish_timeout_s
        try:
            async with asyncio.timeout(limit):
                yield
        except TimeoutError as exc:
            raise DependencyUnavailableError(
                "Kafka or Redis",
                f"{self.settings.kafka_bootstrap} / {redacted_url(self.settings.redis_url)}",
                f"{KAFKA_FIX}; {REDIS_FIX}",
                f"no answer in {limit:g} s",
            ) from exc
        except KafkaError as exc:
            raise kafka_failure(self.settings.kafka_bootstrap, exc) from exc
        except (RedisError, OSError) as exc:
            raise redis_failure(self.settings.redis_url, exc) from exc

    def operator_name(self, key_name: str, key_id: str) -> str:
        """How an API caller is named in interaction records."""
        return f"api:{key_name}:{key_id}"

    async def close(self) -> None:
        """Flush and stop the producer, close Redis and the audit store's connections."""
        await self.database.close()
        if self._publisher is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_timeout_s):
                    await self._publisher.__aexit__(None, None, None)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()


def app_state(request: Request) -> AppState:
    """The dependency routes use to reach the process's clients."""
    state: AppState = request.app.state.orchestrator
    return state
