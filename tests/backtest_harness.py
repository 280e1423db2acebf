"""Helpers for backtest tests: the test journey and its draft, events published at chosen
broker times, and the oracle (the simulator run on the same events)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from orchestrator import jsonwire
from orchestrator.engine.actions import Sent
from orchestrator.engine.catalog import catalog_of
from orchestrator.engine.events import Event
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.journey.loader import compile_source
from orchestrator.journey.source import JourneySource
from orchestrator.simulate import Simulator
from tests.runtime_harness import journey_source

__all__ = [
    "JOURNEY",
    "draft_source",
    "expected_sends",
    "journey",
    "publish_at",
    "write_draft",
]

JOURNEY = "bt-offer"

_TEXT = """
id: bt-offer
name: Backtest offer
category: marketing
trigger: {{event: bt.start}}
exit_when:
  - {{event: bt.buy, goal: true}}
steps:
  - id: hello
    send: {{channel: sms, template: bt_hello, fallback: [in_app]}}
  - id: pause
    wait: {wait}
{extra}  - id: nudge
    send: {{channel: in_app, template: bt_nudge}}
"""
_EXTRA = """  - id: extra
    send: {channel: in_app, template: bt_extra}
"""
_TEMPLATES = {
    "bt_hello": (
        'sms: {body: "Hi {{ profile.first_name }}, 10% off today"}\n'
        'in_app: {title: "Hi {{ profile.first_name }}", body: "10% off today"}'
    ),
    "bt_nudge": 'in_app: {title: "Still thinking?", body: "Your 10% is waiting"}',
    "bt_extra": 'in_app: {title: "Last day", body: "10% off ends tonight"}',
}


def journey(wait: str = "1d", hello: str | None = None) -> JourneySource:
    """The deployed version: hello (sms, else in_app), a wait, a nudge; goal on bt.buy."""
    templates = dict(_TEMPLATES)
    if hello is not None:
        templates["bt_hello"] = templates["bt_hello"].replace("10% off today", hello)
    return journey_source(_TEXT.format(wait=wait, extra=""), templates, path=f"{JOURNEY}.yaml")


def draft_source(wait: str = "1d") -> JourneySource:
    """The draft: the same with one more send step (`extra`) between the wait and the nudge."""
    return journey_source(_TEXT.format(wait=wait, extra=_EXTRA), _TEMPLATES, path=f"{JOURNEY}.yaml")


async def publish_at(settings: Settings, events: Iterable[Event], broker_ms: int) -> None:
    """Publish events keyed by customer with the record timestamp `broker_ms` (the time the
    backtest window is about), and wait until the broker has them."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=5)
    await producer.start()
    try:
        topic = TopicNames(settings.topic_prefix).events
        for event in events:
            await producer.send_and_wait(
                topic,
                jsonwire.dumps(event.to_wire()),
                key=event.customer_id.encode(),
                timestamp_ms=broker_ms,
            )
    finally:
        await producer.stop()


def expected_sends(
    source: JourneySource, version: int, events: list[Event], until: float
) -> Counter[tuple[str, str, str]]:
    """What `orchestrator simulate` sends for these events: (journey, step, channel) counts."""
    simulator = Simulator(catalog_of([compile_source(source, version)]))
    return Counter(
        (a.journey, a.step, a.channel)
        for a in simulator.run(events, until=until)
        if isinstance(a, Sent)
    )


def write_draft(source: JourneySource, directory: Path) -> Path:
    """The journey file and its templates on disk, as an operator's checkout holds them."""
    path = directory / source.path
    path.write_text(source.text)
    for template in source.templates.values():
        target = directory / template.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template.text)
    return path
