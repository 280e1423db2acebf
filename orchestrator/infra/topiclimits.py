"""The largest record batch each output topic takes (`max.message.bytes`), read from the broker.

An operator may set a topic's `max.message.bytes` below the producer's `max_request_size`.
The broker then refuses any batch over it, and on an idempotent producer one refusal breaks
the partition's sequence for every later batch. Knowing each topic's limit lets
`RecordBatcher` refuse an oversized record before sending it and keep every batch under the
limit, so the broker has nothing to refuse. The limits are read at start and re-read
periodically and after any refusal, since an operator can change them at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from orchestrator.errors import OrchestratorError
from orchestrator.infra.producer import MAX_REQUEST_BYTES
from orchestrator.infra.topics import kafka_admin

__all__ = ["TopicLimits"]

log = logging.getLogger(__name__)

_CONFIG = "max.message.bytes"


class TopicLimits:
    """Per-topic batch limits: min(the producer's `max_request_size`, `max.message.bytes`).

    A topic never read (or whose config could not be read) gets `max_request_size`.
    """

    def __init__(
        self, bootstrap: str, topics: Iterable[str], max_request_size: int = MAX_REQUEST_BYTES
    ) -> None:
        self.bootstrap = bootstrap
        self.topics = sorted(set(topics))
        self.max_request_size = max_request_size
        self._limits: dict[str, int] = {}

    def limit(self, topic: str) -> int:
        """The largest record batch (header included) `topic` takes, as last read."""
        return self._limits.get(topic, self.max_request_size)

    async def load(self) -> None:
        """Read every topic's limit; raises `KafkaError` or `DependencyUnavailableError` when
        the broker does not answer (start-up retries this)."""
        async with kafka_admin(self.bootstrap) as admin:
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t, {_CONFIG: ""}) for t in self.topics]
            )
        limits = dict(self._limits)
        for error_code, _, _, name, entries, *_ in response.resources:
            if error_code != 0:  # e.g. not created yet: the broker default applies
                continue
            for entry in entries:
                if entry[0] == _CONFIG and entry[1] is not None:
                    limits[name] = min(self.max_request_size, int(entry[1]))
        changed = {t: v for t, v in limits.items() if self._limits.get(t) != v}
        self._limits = limits
        if changed:
            log.info("output topics' batch limits (bytes): %s", changed)

    async def refresh(self) -> None:
        """`load()`, but keeps the limits as they were when the broker does not answer: a
        refresh is an improvement, not a step anything waits on."""
        try:
            await self.load()
        except (KafkaError, OSError, OrchestratorError) as exc:
            log.warning(
                "could not re-read the topics' %s (%s); keeping the last read", _CONFIG, exc
            )

    async def follow(self, stopping: asyncio.Event, every: float) -> None:
        """Refresh every `every` seconds until `stopping` is set."""
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), every)
            if not stopping.is_set():
                await self.refresh()
