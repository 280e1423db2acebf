"""`orchestrator feedback`: the feedback router, `reroute` a past range, `route --dry-run`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from orchestrator import jsonwire
from orchestrator.contracts.events import EventRecord
from orchestrator.errors import JourneyValidationError, OrchestratorError
from orchestrator.feedback.items import feedback_of
from orchestrator.feedback.reroute import reroute as reroute_range
from orchestrator.feedback.router import FeedbackRouter
from orchestrator.infra.reach import kafka_failure, redis_failure
from orchestrator.infra.settings import Settings, load_settings
from orchestrator.journey.routing import FeedbackText, RoutingTable, read_routing
from orchestrator.timefmt import format_instant, parse_instant

__all__ = ["dry_run", "reroute", "router"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _rules_option(args: argparse.Namespace) -> str | None:
    # Absent unless given (see cli/parser.py: before or after the action).
    rules: str | None = getattr(args, "rules", None)
    return rules


def _rules(args: argparse.Namespace, settings: Settings | None) -> RoutingTable | None:
    path = Path(_rules_option(args) or (settings.feedback_rules if settings else ""))
    try:
        return read_routing(path)
    except JourneyValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
    except OSError as exc:
        print(
            f"{path}: cannot read the rules file: {exc.strerror}; pass --rules FILE or set "
            "ORCHESTRATOR_FEEDBACK_RULES",
            file=sys.stderr,
        )
    return None


def _run(work: Coroutine[Any, Any, T], settings: Settings) -> T | None:
    """Run `work`; a Kafka or Redis failure is one line (the supervisor restarts a router,
    and the restart is the crash case docs/feedback.md describes). None when it failed."""
    try:
        return asyncio.run(work)
    except KafkaError as exc:
        print(kafka_failure(settings.kafka_bootstrap, exc), file=sys.stderr)
    except (RedisError, OSError) as exc:
        print(redis_failure(settings.redis_url, exc), file=sys.stderr)
    except OrchestratorError as exc:
        print(exc, file=sys.stderr)
    return None


def router(args: argparse.Namespace) -> int:
    """Run the feedback router until SIGTERM or SIGINT."""
    settings = load_settings()
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    table = _rules(args, settings)
    if table is None:
        return 1

    async def main() -> bool:
        feedback_router = FeedbackRouter(settings, table)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, feedback_router.stop)
        try:
            await feedback_router.start()
            await feedback_router.run()
        finally:
            await feedback_router.close()
        return True

    return 0 if _run(main(), settings) else 1


def reroute(args: argparse.Namespace) -> int:
    """Route a past range of `events` again with the current rules."""
    settings = load_settings()
    table = _rules(args, settings)
    if table is None:
        return 1
    try:
        since, until = parse_instant(args.since), parse_instant(args.until)
    except ValueError as exc:
        print(f"--from/--until: {exc}", file=sys.stderr)
        return 2
    if until <= since:
        print("--until must be after --from", file=sys.stderr)
        return 2
    summary = _run(reroute_range(settings, table, since, until), settings)
    if summary is None:
        return 1
    teams = ", ".join(f"{team} {n}" for team, n in sorted(summary.rerouted.items())) or "none"
    print(
        f"{format_instant(since)} .. {format_instant(until)}: {summary.events} events, "
        f"{summary.items} feedback items; rerouted with rules {table.name!r} "
        f"({table.digest[:12]}): {teams}; unchanged {summary.unchanged}, "
        f"already rerouted {summary.already}"
    )
    return 0


def dry_run(args: argparse.Namespace) -> int:
    """Show where each line of a text or JSONL file would go; no Kafka, no Redis."""
    table = _rules(args, None if _rules_option(args) else load_settings())
    if table is None:
        return 1
    path = Path(args.dry_run)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"{path}: cannot read: {exc}", file=sys.stderr)
        return 1
    out = Table(title=f"{path}: routed with {table.name!r} ({table.path})")
    for column in ("line", "team", "rule", "keyword", "source", "locale", "text"):
        out.add_column(column, overflow="fold")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item = _item_of(line, path.suffix == ".jsonl")
        if isinstance(item, str):
            print(f"{path}:{number}: skipped: {item}", file=sys.stderr)
            continue
        route = table.route(item)
        out.add_row(
            str(number),
            route.team,
            route.rule or "-",
            route.keyword or "-",
            item.source,
            item.locale or "-",
            item.text,
        )
    Console(width=args.width).print(out)
    return 0


def _item_of(line: str, jsonl: bool) -> FeedbackText | str:
    """A line as an item: plain text, or JSON (an event, or {"text", "locale", ...})."""
    if not jsonl:
        return FeedbackText(text=line.strip(), source="text", customer_id="-")
    try:
        data: Any = jsonwire.loads(line)
    except jsonwire.JSONDecodeError as exc:
        return f"not JSON ({exc})"
    if not isinstance(data, dict):
        return "not a JSON object"
    if "name" in data and "event_id" in data:
        try:
            event = EventRecord(**{k: data[k] for k in data if k in _EVENT_FIELDS})
        except TypeError as exc:
            return f"not an event: {exc}"
        item = feedback_of(event, data.get("profile"))
        return item if item is not None else f"event {event.name!r} carries no feedback"
    if not isinstance(data.get("text"), str):
        return 'needs "text" (or an event with "name" and "event_id")'
    return FeedbackText(
        text=data["text"],
        source=str(data.get("source", "text")),
        customer_id=str(data.get("customer_id", "-")),
        channel=data.get("channel"),
        locale=data.get("locale"),
        journey=data.get("journey"),
        properties=data.get("properties") or {},
        profile=data.get("profile") or {},
    )


_EVENT_FIELDS = ("event_id", "customer_id", "name", "occurred_at", "channel", "properties")
