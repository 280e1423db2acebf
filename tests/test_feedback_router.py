"""The feedback router on the real broker and Redis: exactly once after kill -9, and reroute."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from orchestrator import jsonwire
from orchestrator.contracts.events import EventRecord
from orchestrator.contracts.schemas import read_record
from orchestrator.control.feedbackview import FeedbackView
from orchestrator.engine.events import Event
from orchestrator.feedback.items import feedback_of, item_id_of
from orchestrator.feedback.reroute import reroute
from orchestrator.feedback.router import FeedbackRouter
from orchestrator.infra.names import RedisKeys, TopicNames
from orchestrator.infra.settings import Settings
from orchestrator.infra.topics import kafka_admin, partitions_of
from orchestrator.journey.routing import RoutingTable, compile_routing, read_routing
from tests.outage_infra import free_port
from tests.runtime_harness import (
    WAIT_SECONDS,
    OrchestratorProcess,
    isolated_settings,
    make_event,
    prepare,
    publish,
    redis_client,
    wait_until,
)

RULES = """\
routing: crash
triage: triage
teams:
  billing: {webhook: "https://hooks.example/billing"}
  delivery: {email: delivery@example.com}
  support: {}
  triage: {}
rules:
  - id: refunds
    team: billing
    keywords: {en: [refund, "charged twice"], fr: [remboursement]}
  - id: late
    team: delivery
    keywords: {en: [late, "never arrived"]}
  - id: parcels
    team: support
    keywords: {en: [parcel]}
"""
# The rules changed: parcels are delivery's now.
RULES_V2 = RULES.replace("    team: support\n", "    team: delivery\n")
TEXTS = [
    "I was charged twice",
    "Remboursement svp",
    "my order is late",
    "the parcel never arrived",
    "where is my parcel",
    "lovely people",
]
TEAMS = ("billing", "delivery", "support", "triage")


def _events(count: int, tag: str) -> list[Event]:
    """Feedback from every source, and events that carry none."""
    events: list[Event] = []
    for i in range(count):
        customer, text = f"c-{i % 37}", f"{TEXTS[i % len(TEXTS)]} #{i}"
        kind = i % 5
        if kind == 0:
            events.append(make_event(customer, "survey.answered", {"comment": text, "score": 3}))
        elif kind == 1:
            events.append(make_event(customer, "message.replied", {"text": text, "channel": "sms"}))
        elif kind == 2:
            events.append(make_event(customer, "support.note", {"text": text, "ticket_id": "T-1"}))
        elif kind == 3:
            events.append(make_event(customer, "app.review", {"text": text, "rating": 4}))
        else:
            events.append(make_event(customer, "order.placed", {"order_id": f"{tag}{i}"}))
    return events


def _expected(events: list[Event], table: RoutingTable) -> dict[str, str]:
    """item_id -> team, from the pure routing (the oracle)."""
    expected: dict[str, str] = {}
    for event in events:
        item = feedback_of(EventRecord.of(event))
        if item is not None:
            expected[item_id_of(event.customer_id, event.event_id)] = table.route(item).team
    return expected


class CommittedReader:
    """Reads topics from the beginning with `read_committed`, as the teams' consumers do."""

    def __init__(self, settings: Settings, topics: list[str]) -> None:
        self.settings = settings
        self.topics = topics
        self.records: list[tuple[str, dict[str, Any]]] = []
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed",
        )

    async def start(self) -> None:
        await self.consumer.start()
        assigned = [
            TopicPartition(topic, p)
            for topic in self.topics
            for p in await partitions_of(self.settings.kafka_bootstrap, topic)
        ]
        self.consumer.assign(assigned)
        await self.consumer.seek_to_beginning(*assigned)

    async def to_end(self, timeout: float = WAIT_SECONDS) -> None:
        """Read every committed record the topics hold now."""
        partitions = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(partitions)

        async def behind() -> bool:
            return any([await self.consumer.position(tp) < ends[tp] for tp in partitions])

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await behind():
            assert loop.time() < deadline, f"not at the end after {timeout}s"
            await self._read()

    async def until(self, done: Callable[[], bool], timeout: float = WAIT_SECONDS) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done():
            assert loop.time() < deadline, f"saw {len(self.records)} records: {self.records[-3:]}"
            await self._read()

    async def _read(self) -> None:
        for tp, messages in (await self.consumer.getmany(timeout_ms=200)).items():
            for message in messages:
                # Every record must match its topic's contract.
                name = "outbound" if tp.topic.endswith("outbound") else "feedback"
                read_record(name, message.value)
                self.records.append((tp.topic, jsonwire.loads(message.value)))


@contextlib.asynccontextmanager
async def committed_reader(settings: Settings, topics: list[str]) -> AsyncIterator[CommittedReader]:
    reader = CommittedReader(settings, topics)
    await reader.start()
    try:
        yield reader
    finally:
        await reader.consumer.stop()


async def _all_routed(settings: Settings) -> bool:
    """Has the feedback group committed every `events` record?"""
    topic = TopicNames(settings.topic_prefix).events
    probe = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None)
    await probe.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = await probe.end_offsets(partitions)
    finally:
        await probe.stop()
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        committed = await admin.list_consumer_group_offsets(settings.feedback_group)
    return all(end <= (committed[tp].offset if tp in committed else 0) for tp, end in ends.items())


def _settings(infrastructure: Settings, **overrides: Any) -> Settings:
    return isolated_settings(
        infrastructure,
        feedback_group=f"{infrastructure.feedback_group}-{time.time_ns()}",
        feedback_metrics_port=0,
        public_url="https://api.example",
        **overrides,
    )


async def _team_counts(settings: Settings) -> dict[str, int]:
    async with redis_client(settings) as redis:
        view = FeedbackView(
            redis, RedisKeys(settings.redis_prefix), TopicNames(settings.topic_prefix)
        )
        return {team.team: team.items for team in await view.teams()}


async def test_kill_9_mid_stream_every_item_lands_on_its_team_once(
    infrastructure: Settings, tmp_path: Path
) -> None:
    settings = _settings(infrastructure, batch_max=10)
    topics = await prepare(settings)
    rules = tmp_path / "routing" / "rules.yaml"
    rules.parent.mkdir()
    rules.write_text(RULES)
    table = read_routing(rules)
    events = _events(1000, "a")
    expected = _expected(events, table)
    assert set(expected.values()) == set(TEAMS) and len(expected) == 800
    await publish(settings, events)
    command = ("feedback", "--rules", str(rules))
    watched = [*(topics.feedback(team) for team in TEAMS), topics.outbound]
    first = OrchestratorProcess(settings, tmp_path / "router-a.log", *command)
    try:
        async with committed_reader(settings, watched) as reader:
            # Kill the first router once it has committed a few batches, not all.
            await reader.until(lambda: len(reader.records) >= 40)
    finally:
        first.kill()
    assert not await _all_routed(settings), "the router finished before the kill"
    second = OrchestratorProcess(settings, tmp_path / "router-b.log", *command)
    try:
        await wait_until(lambda: _all_routed(settings), "every event routed")
    finally:
        assert second.terminate() == 0, second.log()
    async with committed_reader(settings, watched) as reader:
        await reader.to_end()
    routed = [record for topic, record in reader.records if topic != topics.outbound]
    ids = Counter(record["item_id"] for record in routed)
    assert [i for i, n in ids.items() if n > 1] == [], "items produced twice"
    assert {record["item_id"]: record["team"] for record in routed} == expected
    for topic, record in reader.records:
        if topic != topics.outbound:
            assert topic == topics.feedback(record["team"])
            assert record["timeline_url"] == (
                "https://api.example/v1/audit/records?"
                f"customer={record['customer_id']}&order=newest"
            )
    # Billing's webhook and delivery's email, once per item, on `outbound` for the connectors.
    outbound = Counter(
        (record["channel"], record["instance_id"])
        for topic, record in reader.records
        if topic == topics.outbound
    )
    assert set(outbound.values()) == {1}
    by_team = {team: {i for i, t in expected.items() if t == team} for team in TEAMS}
    assert {i for channel, i in outbound if channel == "webhook"} == by_team["billing"]
    assert {i for channel, i in outbound if channel == "email"} == by_team["delivery"]
    # The Redis view counted each item once too.
    assert await _team_counts(settings) == dict(Counter(expected.values()))


async def test_a_rules_change_and_a_reroute_move_a_past_item_once(
    infrastructure: Settings,
) -> None:
    settings = _settings(infrastructure)
    topics = await prepare(settings)
    table = compile_routing("rules.yaml", RULES)
    since = time.time()
    parcel = make_event("c-1", "survey.answered", {"comment": "where is my parcel"})
    refund = make_event("c-2", "survey.answered", {"comment": "refund please"})
    await publish(settings, [parcel, refund])
    until = time.time() + 0.001
    # Kafka stamps records in milliseconds: this one is after the range.
    await wait_until(lambda: time.time() > until + 0.002, "the clock past the range")
    later = make_event("c-3", "survey.answered", {"comment": "my parcel, again"})
    await publish(settings, [later])
    router = FeedbackRouter(
        settings.model_copy(update={"feedback_metrics_port": free_port()}), table
    )
    await router.start()
    task = asyncio.create_task(router.run())
    try:
        await wait_until(lambda: _all_routed(settings), "every event routed")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{router.metrics.port}") as http:
            health = await http.get("/health")
            metrics = (await http.get("/metrics")).text
    finally:
        router.stop()
        await task
        await router.close()
    assert await _team_counts(settings) == {"billing": 1, "delivery": 0, "support": 2, "triage": 0}
    assert health.json() == {"state": "healthy"}
    support = topics.feedback("support")
    assert (
        f'orchestrator_feedback_routed_total{{rerouted="false",source="survey.answered",'
        f'team="support",topic="{support}"}} 2.0'
    ) in metrics

    changed = compile_routing("rules.yaml", RULES_V2)
    summary = await reroute(settings, changed, since, until)
    assert (summary.events, summary.items, summary.unchanged) == (2, 2, 1)
    assert dict(summary.rerouted) == {"delivery": 1}
    again = await reroute(settings, changed, since, until)
    assert (dict(again.rerouted), again.already, again.unchanged) == ({}, 1, 1)

    async with committed_reader(settings, [topics.feedback("delivery"), topics.outbound]) as reader:
        await reader.to_end()
    [record] = [r for topic, r in reader.records if topic != topics.outbound]
    original = item_id_of("c-1", parcel.event_id)
    assert (record["rerouted"], record["original_item_id"]) == (True, original)
    assert (record["rules_digest"], record["rule"]) == (changed.digest, "parcels")
    assert record["item_id"] != original
    # Delivery hears of the item it gained, once, as of any new one: its email.
    moved = [
        m for topic, m in reader.records if topic == topics.outbound and m["step"] == "delivery"
    ]
    assert [(m["message_id"], m["to"]) for m in moved] == [
        (f"{record['item_id']}:email", "delivery@example.com")
    ]
    assert "rerouted to this team" in moved[0]["content"]["body"]
    async with redis_client(settings) as redis:
        view = FeedbackView(redis, RedisKeys(settings.redis_prefix), topics)
        teams = {team.team: (team.items, team.rerouted) for team in await view.teams()}
    # The item moved: support holds one item now, delivery one (rerouted).
    assert teams["delivery"] == (1, 1) and teams["support"] == (1, 0)
