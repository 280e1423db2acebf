"""The whole path of a journey in one block: the journey deployed, the journey worker, the
connectors of some channels, the API in-process, and readers of `events` and `interactions`.
The provider (a real SMTP server, the Twilio stand-in) is the test's to start."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from orchestrator.control.operations import JourneyOperations
from orchestrator.infra.settings import Settings
from orchestrator.journey.source import JourneySource
from tests.api_harness import api_client
from tests.connector_harness import running_connectors
from tests.runtime_harness import TopicReader, prepare, reader, running_worker

__all__ = ["Stack", "running_stack"]


@dataclass(frozen=True)
class Stack:
    """What a test of the whole path talks to and reads."""

    settings: Settings
    client: httpx.AsyncClient
    events: TopicReader
    log: TopicReader


@contextlib.asynccontextmanager
async def running_stack(
    settings: Settings, journey: JourneySource, channels: list[str]
) -> AsyncIterator[Stack]:
    """`journey` deployed, and everything running for the block."""
    topics = await prepare(settings)
    await JourneyOperations(settings, "test").deploy([journey])
    async with (
        running_worker(settings),
        running_connectors(settings, channels),
        api_client(settings) as client,
        reader(settings, topics.events) as events,
        reader(settings, topics.interactions) as log,
    ):
        yield Stack(settings, client, events, log)
