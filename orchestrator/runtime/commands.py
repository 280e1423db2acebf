"""CLI commands of the streaming runtime: worker, topics, deploy, journeys, publish."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from orchestrator.demo.run import DemoOptions, run_demo
from orchestrator.errors import ConfigurationError, JourneyValidationError, OrchestratorError
from orchestrator.journey.library import read_sources
from orchestrator.runtime.names import TopicNames
from orchestrator.runtime.operations import DeployOutcome, JourneyOperations
from orchestrator.runtime.outage import QuietRepeats, StoppedWhileWaitingError
from orchestrator.runtime.publisher import EventPublisher, PublishReport
from orchestrator.runtime.reach import check_redis, kafka_failure, redis_failure
from orchestrator.runtime.settings import Settings, load_settings
from orchestrator.runtime.topics import ensure_topics, kafka_admin
from orchestrator.runtime.worker import JourneyWorker
from orchestrator.simulate import read_events_file

__all__ = ["register"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _run(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
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


async def _require_topic(settings: Settings, topic: str) -> None:
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
    await _require_topic(settings, TopicNames(settings.topic_prefix).journeys)


def _worker(args: argparse.Namespace) -> int:
    settings = load_settings()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "debug":
        # The libraries narrate every start, stop and rebalance step at INFO, and every failed
        # connection attempt at ERROR (hundreds a second while Kafka is away): the worker's
        # own outage lines summarise those.
        for noisy in ("faust", "mode", "aiokafka"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
        for handler in logging.getLogger().handlers:
            handler.addFilter(QuietRepeats(("faust", "mode", "aiokafka")))
    threading.excepthook = _thread_failed
    # Last resort: a client thread that will not end must not keep a stopping process alive.
    watchdog = threading.Timer(settings.shutdown_timeout_s + 10, _exit_now, args=(1,))
    watchdog.daemon = True

    async def main() -> None:
        worker = JourneyWorker(settings, create_topics=True)

        def stop() -> None:
            if not watchdog.is_alive():
                watchdog.start()
            worker.stop()

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            async with worker:
                await worker.run()
        except StoppedWhileWaitingError as exc:
            log.warning("%s", exc)
        finally:
            if not watchdog.is_alive():
                watchdog.start()
            # Tasks of clients abandoned by close() (a broker away) are destroyed with the
            # loop; asyncio's "Task was destroyed but it is pending" says nothing new then.
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    try:
        asyncio.run(main())
    finally:
        lingering = [t.name for t in threading.enumerate() if _holds_exit(t)]
        if lingering:
            # A consumer thread of a client abandoned while the broker was away: waiting for
            # it would keep the process up for the whole outage.
            log.error("exiting without waiting for client threads %s", ", ".join(lingering))
            _exit_now(1 if sys.exc_info()[0] is not None else 0)
    watchdog.cancel()
    return 0


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    # faust's consumer thread raises when its stop is cut short while the broker is away;
    # one line says so (a traceback at debug level), not a 40-line dump.
    name = args.thread.name if args.thread is not None else "?"
    log.warning(
        "client thread %s ended with %s: %s",
        name,
        args.exc_type.__name__,
        args.exc_value,
        exc_info=args.exc_value if log.isEnabledFor(logging.DEBUG) else None,
    )


def _holds_exit(thread: threading.Thread) -> bool:
    return thread is not threading.main_thread() and not thread.daemon and thread.is_alive()


def _exit_now(code: int) -> None:
    log.error("the worker did not finish stopping in time; exiting with status %d", code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _topics(args: argparse.Namespace) -> int:
    settings = load_settings()
    created = _run(settings, ensure_topics(settings))
    print(f"created: {', '.join(created)}" if created else "all topics exist")
    return 0


def _deploy(args: argparse.Namespace) -> int:
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
        outcomes = _run(settings, deploy())
    except JourneyValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("nothing deployed: fix the problems above", file=sys.stderr)
        return 1
    for outcome in outcomes:
        verb = "deployed" if outcome.changed else "unchanged"
        print(f"{outcome.journey}: {verb} v{outcome.version}")
    return 0


def _journeys(args: argparse.Namespace) -> int:
    action = args.action
    if action != "list" and not args.journey:
        print(
            f"`journeys {action}` needs a journey id: orchestrator journeys {action} ID",
            file=sys.stderr,
        )
        return 2
    settings = load_settings()
    ops = JourneyOperations(settings, args.operator)
    _run(settings, _operator_ready(settings, redis=action not in ("list", "show")))
    if action == "list":
        records = _run(settings, ops.records())
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
        records = _run(settings, ops.records())
        record = records.get(args.journey)
        if record is None:
            print(f"journey {args.journey!r} is not deployed", file=sys.stderr)
            return 1
        _show(record)
        counters, active = _run(settings, ops.live_stats(args.journey))
        print(f"live:     {active} customers in the journey now")
        for name, count in counters.items():
            print(f"  {name:28} {count:>8}")
        return 0
    result: dict[str, Any]
    if action == "rollback":
        result = _run(settings, ops.rollback(args.journey, args.version))
    else:
        status = {"pause": "paused", "resume": "active", "archive": "archived"}[action]
        result = _run(settings, ops.set_status(args.journey, status))
    print(
        f"{args.journey}: {result['status']}, current v{result['current']}"
        + (f", {result['announced']} active customers told" if "announced" in result else "")
    )
    return 0


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


def _publish(args: argparse.Namespace) -> int:
    numbered, bad = read_events_file(args.events)
    not_sent = {line.number: line.reason for line in bad}
    settings = load_settings()

    async def send() -> PublishReport:
        await _require_topic(settings, TopicNames(settings.topic_prefix).events)
        async with EventPublisher(settings) as publisher:
            return await publisher.publish_lines(numbered)

    try:
        report = _run(settings, send())
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


def _demo(args: argparse.Namespace) -> int:
    options = DemoOptions(args.customers, args.speed, args.days, args.workers, args.journeys)
    return _run(load_settings(), run_demo(options, sys.stdout))


def register(commands: Any) -> None:
    """Add the runtime's subcommands to the `orchestrator` parser."""
    worker = commands.add_parser("worker", help="run a journey worker (Kafka + Redis)")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    worker.set_defaults(handler=_worker)

    topics = commands.add_parser("topics", help="create the runtime's topics")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(handler=_topics)

    deploy = commands.add_parser("deploy", help="validate and deploy journeys to every worker")
    deploy.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    deploy.add_argument("--templates", type=Path, action="append", default=[], metavar="DIR")
    deploy.add_argument("--operator", help="who deploys (default $ORCHESTRATOR_OPERATOR)")
    deploy.set_defaults(handler=_deploy)

    journeys = commands.add_parser(
        "journeys", help="list, show, pause, resume, rollback, archive deployed journeys"
    )
    journeys.add_argument(
        "action", choices=["list", "show", "pause", "resume", "rollback", "archive"]
    )
    journeys.add_argument("journey", nargs="?")
    journeys.add_argument("--version", type=int, help="rollback target (default: previous)")
    journeys.add_argument("--operator")
    journeys.set_defaults(handler=_journeys)

    publish = commands.add_parser("publish", help="send events from a JSON Lines file")
    publish.add_argument("events", metavar="EVENTS.jsonl")
    publish.set_defaults(handler=_publish)

    demo = commands.add_parser(
        "demo",
        help="the main job end to end: local Kafka and Redis, "
        "the journey library, workers, synthetic customers",
    )
    demo.add_argument("--customers", type=int, default=3000)
    demo.add_argument(
        "--speed",
        type=float,
        default=20160.0,
        help="virtual seconds per real second (default: 5.6 hours a second)",
    )
    demo.add_argument("--days", type=float, default=14.0, help="virtual days to play")
    demo.add_argument("--workers", type=int, default=2, help="journey worker processes")
    demo.add_argument("--journeys", type=Path, default=Path("journeys"))
    demo.set_defaults(handler=_demo)
