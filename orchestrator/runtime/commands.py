"""CLI commands of the streaming runtime: worker, topics, deploy, journeys, publish."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from orchestrator.demo.run import DemoOptions, run_demo
from orchestrator.errors import JourneyValidationError
from orchestrator.journey.library import read_sources
from orchestrator.runtime.operations import JourneyOperations
from orchestrator.runtime.outage import QuietRepeats, StoppedWhileWaitingError
from orchestrator.runtime.publisher import EventPublisher
from orchestrator.runtime.settings import Settings
from orchestrator.runtime.topics import ensure_topics
from orchestrator.runtime.worker import JourneyWorker
from orchestrator.simulate import read_events

__all__ = ["register"]

log = logging.getLogger(__name__)


def _worker(args: argparse.Namespace) -> int:
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
    settings = Settings()
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
    created = asyncio.run(ensure_topics(Settings()))
    print(f"created: {', '.join(created)}" if created else "all topics exist")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    sources, problems = read_sources(args.paths, args.templates)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1
    try:
        outcomes = asyncio.run(JourneyOperations(Settings(), args.operator).deploy(sources))
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
    ops = JourneyOperations(Settings(), args.operator)
    action = args.action
    if action != "list" and not args.journey:
        print(
            f"`journeys {action}` needs a journey id: orchestrator journeys {action} ID",
            file=sys.stderr,
        )
        return 2
    if action == "list":
        records = asyncio.run(ops.records())
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
        records = asyncio.run(ops.records())
        record = records.get(args.journey)
        if record is None:
            print(f"journey {args.journey!r} is not deployed", file=sys.stderr)
            return 1
        _show(record)
        counters, active = asyncio.run(ops.live_stats(args.journey))
        print(f"live:     {active} customers in the journey now")
        for name, count in counters.items():
            print(f"  {name:28} {count:>8}")
        return 0
    result: dict[str, Any]
    if action == "rollback":
        result = asyncio.run(ops.rollback(args.journey, args.version))
    else:
        status = {"pause": "paused", "resume": "active", "archive": "archived"}[action]
        result = asyncio.run(ops.set_status(args.journey, status))
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
    with Path(args.events).open(encoding="utf-8") as handle:
        events, bad = read_events(handle)
    for line in bad:
        print(f"{args.events}:{line.number}: not sent: {line.reason}", file=sys.stderr)

    async def send() -> int:
        async with EventPublisher(Settings()) as publisher:
            return await publisher.publish(events)

    print(f"published {asyncio.run(send())} events")
    return 1 if bad else 0


def _demo(args: argparse.Namespace) -> int:
    options = DemoOptions(args.customers, args.speed, args.days, args.workers, args.journeys)
    return asyncio.run(run_demo(options, sys.stdout))


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
