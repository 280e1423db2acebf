"""Operator commands: topics, deploy, journeys, publish; thin over `orchestrator.control`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from orchestrator.audit.counts import JourneyCounts, journey_counts
from orchestrator.audit.db import connection, require_schema
from orchestrator.control.operations import DeployOutcome, JourneyOperations
from orchestrator.control.publisher import EventPublisher, PublishReport
from orchestrator.engine.catalog import JourneyStatus
from orchestrator.errors import ConfigurationError, JourneyValidationError, OrchestratorError
from orchestrator.infra.names import TopicNames
from orchestrator.infra.reach import check_redis, kafka_failure, redis_failure
from orchestrator.infra.settings import Settings, load_settings
from orchestrator.infra.topics import ensure_topics, kafka_admin
from orchestrator.journey.library import read_sources
from orchestrator.simulate import read_events_file

__all__ = ["deploy", "journeys", "publish", "require_topic", "run_converting", "topics"]

T = TypeVar("T")


def run_converting(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(work)`, with any Kafka or Redis error left unconverted made a typed one.

    The clients' start-up is bounded and converted where it happens; this catches what a
    broker or Redis going away mid-command raises, so the CLI still prints one line.
    """
    try:
        return asyncio.run(work)
    except KafkaError as exc:
        raise kafka_failure(settings.kafka_bootstrap, exc) from exc
    except RedisError as exc:
        raise redis_failure(settings.redis_url, exc) from exc


async def require_topic(settings: Settings, topic: str) -> None:
    """Fail with the fix when `topic` does not exist (reading or sending would wait on it)."""
    async with kafka_admin(settings.kafka_bootstrap) as admin:
        exists = topic in await admin.list_topics()
    if not exists:
        raise ConfigurationError(
            f"topic {topic} does not exist on Kafka at {settings.kafka_bootstrap}: create the "
            "topics with `orchestrator topics create`, or fix ORCHESTRATOR_TOPIC_PREFIX "
            f"(now {settings.topic_prefix!r})"
        )


async def _operator_ready(settings: Settings, redis: bool) -> None:
    """Check up front what an operator command needs, so a failure is quick and says what."""
    if redis:
        await check_redis(settings)
    await require_topic(settings, TopicNames(settings.topic_prefix).journeys)


def topics(args: argparse.Namespace) -> int:
    settings = load_settings()
    created = run_converting(settings, ensure_topics(settings))
    print(f"created: {', '.join(created)}" if created else "all topics exist")
    return 0


def deploy(args: argparse.Namespace) -> int:
    if args.dry_run:
        from orchestrator.cli.backtest import dry_run  # noqa: PLC0415 - only a dry run needs it

        return dry_run(args)
    sources, problems = read_sources(args.paths, args.templates)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    settings = load_settings()

    async def deploy() -> list[DeployOutcome]:
        await _operator_ready(settings, redis=True)
        return await JourneyOperations(settings, args.operator).deploy(sources)

    try:
        outcomes = run_converting(settings, deploy())
    except JourneyValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("nothing deployed: fix the problems above", file=sys.stderr)
        return 1
    for outcome in outcomes:
        verb = "deployed" if outcome.changed else "unchanged"
        print(f"{outcome.journey}: {verb} v{outcome.version}")
    return 0


def journeys(args: argparse.Namespace) -> int:
    action = args.action
    if action != "list" and not args.journey:
        print(
            f"`journeys {action}` needs a journey id: orchestrator journeys {action} ID",
            file=sys.stderr,
        )
        return 2
    settings = load_settings()
    ops = JourneyOperations(settings, args.operator)
    run_converting(settings, _operator_ready(settings, redis=action not in ("list", "show")))
    if action == "list":
        records = run_converting(settings, ops.records())
        print(f"{'JOURNEY':32} {'STATUS':9} {'CURRENT':>7} {'VERSIONS':>8}  UPDATED")
        for journey in sorted(records):
            rec = records[journey]
            print(
                f"{journey:32} {rec['status']:9} {'v' + str(rec['current']):>7} "
                f"{len(rec['versions']):>8}  {rec.get('updated_at', '')} by "
                f"{rec.get('operator', '?')}"
            )
        return 0
    if action == "show":
        records = run_converting(settings, ops.records())
        record = records.get(args.journey)
        if record is None:
            print(f"journey {args.journey!r} is not deployed", file=sys.stderr)
            return 1
        _show(record)
        counters, active = run_converting(settings, ops.live_stats(args.journey))
        print(f"live:     {active} customers in the journey now")
        for name, count in counters.items():
            print(f"  {name:28} {count:>8}")
        if args.exact:
            _print_exact(run_converting(settings, _exact_counts(settings, args.journey)))
        return 0
    result: dict[str, Any]
    if action == "rollback":
        result = run_converting(settings, ops.rollback(args.journey, args.version))
    else:
        statuses: dict[str, JourneyStatus] = {
            "pause": "paused",
            "resume": "active",
            "archive": "archived",
        }
        status = statuses[action]
        result = run_converting(settings, ops.set_status(args.journey, status))
    print(
        f"{args.journey}: {result['status']}, current v{result['current']}"
        + (f", {result['announced']} active customers told" if "announced" in result else "")
    )
    return 0


async def _exact_counts(settings: Settings, journey: str) -> JourneyCounts:
    async with connection(settings.database_url) as conn:
        await require_schema(conn)
        return await journey_counts(conn, journey)


def _print_exact(counts: JourneyCounts) -> None:
    """The audit store's counts, in the live counters' layout."""
    print("exact:    from the audit store (each record once; behind live by the sink's lag)")
    print(f"  {'entered':28} {counts.entered:>8}")
    for title, values in (
        ("sent", counts.sent), ("suppressed", counts.suppressed), ("exited", counts.exited),
    ):  # fmt: skip
        for name, count in sorted(values.items()):
            print(f"  {title + '.' + name:28} {count:>8}")


def _show(record: dict[str, Any]) -> None:
    print(
        f"journey:  {record['journey']}\nstatus:   {record['status']}\n"
        f"current:  v{record['current']}\nupdated:  {record.get('updated_at')} by "
        f"{record.get('operator')} ({record.get('action')})"
    )
    for version in sorted(record["versions"], key=int):
        entry = record["versions"][version]
        print(
            f"  v{version}: {entry['deployed_at']} by {entry['operator']} "
            f"sha256:{entry['digest'][:12]} ({entry['source']['path']})"
        )


def publish(args: argparse.Namespace) -> int:
    numbered, bad = read_events_file(args.events)
    not_sent = {line.number: line.reason for line in bad}
    settings = load_settings()

    async def send() -> PublishReport:
        await require_topic(settings, TopicNames(settings.topic_prefix).events)
        async with EventPublisher(settings) as publisher:
            return await publisher.publish_lines(numbered)

    try:
        report = run_converting(settings, send())
    except OrchestratorError:
        _report_lines(args.events, not_sent)  # the bad lines are still worth fixing
        raise
    not_sent.update(report.refused)
    _report_lines(args.events, not_sent)
    print(_publish_summary(report, list(not_sent)))
    return 1 if not_sent else 0


def _report_lines(path: str, not_sent: dict[int, str]) -> None:
    for number, reason in sorted(not_sent.items()):
        print(f"{path}:{number}: not sent: {reason}", file=sys.stderr)


def _publish_summary(report: PublishReport, not_sent_lines: list[int]) -> str:
    """`published N events`, and where the lines not sent fell when there are some."""
    sent = len(report.sent)
    not_sent = sorted(not_sent_lines)
    if not not_sent:
        return f"published {sent} events"
    first = not_sent[0]
    before = sum(1 for number in report.sent if number < first)
    lines = "line" if len(not_sent) == 1 else "lines"
    return (
        f"published {sent} events ({before} before line {first}, {sent - before} after); "
        f"{len(not_sent)} {lines} not sent"
    )
