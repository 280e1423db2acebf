"""Day-to-day operations: topics dump, lag, deadletters; thin over `orchestrator.control`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from dataclasses import dataclass, field
from typing import Any

from orchestrator import jsonwire
from orchestrator.cli.operator import run_converting
from orchestrator.control.deadletters import (
    DeadLetterEntry,
    OriginalFetcher,
    ReplayReport,
    list_deadletters,
    replay_deadletters,
)
from orchestrator.control.lag import LagReport, group_lag
from orchestrator.control.topicdump import Start, TopicRecord, read_topic, resolve_topic
from orchestrator.infra.settings import Settings, load_settings

__all__ = ["deadletters_list", "deadletters_replay", "dump", "lag"]

# Enough of an excerpt to recognise a record on one line.
_EXCERPT_CHARS = 160


def dump(args: argparse.Namespace) -> int:
    settings = load_settings()
    # --follow alone tails what comes next, like kafka-console-consumer; otherwise the
    # point is what is already there.
    start = Start(beginning=args.from_beginning or not args.follow, last=args.last)
    wanted = None if args.key is None else args.key.encode()

    async def run() -> int:
        topic = await resolve_topic(settings, args.topic)
        printed = 0
        records = read_topic(
            settings, topic, start=start, partition=args.partition, follow=args.follow
        )
        # aclosing: leaving at --limit must stop the consumer now, inside this event loop.
        async with contextlib.aclosing(records):
            async for record in records:
                if wanted is not None and record.key != wanted:
                    continue
                _print_record(record, args.jsonl)
                sys.stdout.flush()  # a follower's reader (a pipe) sees each record at once
                printed += 1
                if printed == args.limit:
                    break
        return printed

    printed = run_converting(settings, run())
    if not args.jsonl:
        print(f"({printed} records)", file=sys.stderr)
    return 0


def _print_record(record: TopicRecord, jsonl: bool) -> None:
    data = record.as_json()
    if jsonl:
        print(jsonwire.dumps_line(data))
        return
    print(
        f"# {record.topic}[{record.partition}]@{record.offset} {record.timestamp or '-'} "
        f"key={jsonwire.dumps_line(data['key'])}"
    )
    print(jsonwire.dumps_pretty(data["value"]))


def lag(args: argparse.Namespace) -> int:
    settings = load_settings()
    report = run_converting(settings, group_lag(settings, args.group))
    if args.json:
        print(jsonwire.dumps_line(report.as_json()))
    else:
        _print_lag(report)
    return 0


def _print_lag(report: LagReport) -> None:
    print(f"group {report.group}")
    width = max([len("TOPIC"), *(len(p.topic) for p in report.partitions)])
    print(
        f"{'TOPIC':{width}} {'PARTITION':>9} {'COMMITTED':>10} {'END':>10} {'LAG':>8}  TIMERS DUE"
    )
    for p in report.partitions:
        committed = "-" if p.committed is None else str(p.committed)
        timers = "" if p.overdue_timers is None else str(p.overdue_timers)
        print(
            f"{p.topic:{width}} {p.partition:>9} {committed:>10} {p.end:>10} {p.lag:>8}  {timers}"
        )
    overdue = report.total_overdue
    print(
        f"total lag {report.total_lag}" + ("" if overdue is None else f", {overdue} timers overdue")
    )
    if report.redis_error is not None:
        print(f"overdue timers unknown: {report.redis_error}")


def deadletters_list(args: argparse.Namespace) -> int:
    settings = load_settings()

    async def run() -> tuple[list[DeadLetterEntry], _Originals | None]:
        entries: list[DeadLetterEntry] = []
        letters = list_deadletters(settings, args.reason)
        async with contextlib.aclosing(letters):  # stop the consumer at --limit, here
            async for entry in letters:
                _print_letter(entry)
                entries.append(entry)
                if len(entries) == args.limit:
                    break
        originals = None if args.jsonl is None else await _originals(settings, entries)
        return entries, originals

    entries, originals = run_converting(settings, run())
    summary = f"{len(entries)} dead letters"
    if originals is not None:
        with open(args.jsonl, "w", encoding="utf-8") as out:
            out.writelines(jsonwire.dumps_line(event) + "\n" for event in originals.events)
        summary += f"; wrote {len(originals.events)} originals to {args.jsonl}"
        if originals.not_objects:
            summary += f"; {originals.not_objects} not JSON objects (nothing to fix by hand)"
        if originals.gone:
            summary += f"; {len(originals.gone)} gone ({originals.gone[0]})"
    print(summary)
    return 0


def _print_letter(entry: DeadLetterEntry) -> None:
    size = "?" if entry.length is None else f"{entry.length}"
    digest = f" sha256:{entry.sha256[:12]}" if entry.sha256 else ""
    print(
        f"deadletter[{entry.partition}]@{entry.offset} from {entry.source} "
        f"key={jsonwire.dumps_line(entry.key)} {size} bytes{digest}: {entry.reason}"
    )
    if entry.excerpt:
        cut = " ..." if entry.truncated or len(entry.excerpt) > _EXCERPT_CHARS else ""
        print(f"    {jsonwire.dumps_line(entry.excerpt[:_EXCERPT_CHARS])}{cut}")


@dataclass(slots=True)
class _Originals:
    """Originals fetched for `deadletters list --jsonl`: the JSON objects, and the rest."""

    events: list[dict[str, Any]] = field(default_factory=list)
    not_objects: int = 0
    gone: list[str] = field(default_factory=list)


async def _originals(settings: Settings, entries: list[DeadLetterEntry]) -> _Originals:
    """Fetch the originals of `entries`; keep those that are JSON objects, to fix by hand."""
    found = _Originals()
    async with OriginalFetcher(settings) as fetcher:
        for entry in entries:
            original = await fetcher.fetch(entry)
            if isinstance(original, str):
                found.gone.append(original)
                continue
            try:
                event = jsonwire.loads(original.value)
            except jsonwire.JSONDecodeError:
                event = None
            if isinstance(event, dict):
                found.events.append(event)
            else:
                found.not_objects += 1
    return found


def deadletters_replay(args: argparse.Namespace) -> int:
    settings = load_settings()
    report = run_converting(settings, replay_deadletters(settings, args.reason, args.dry_run))
    _print_replay(report)
    return 1 if report.refused else 0


def _print_replay(report: ReplayReport) -> None:
    verb = "would replay" if report.dry_run else "replayed"
    for entry in report.replayed:
        print(f"{verb}: {entry.source} key={jsonwire.dumps_line(entry.key)} ({entry.reason})")
    for entry, why in report.refused:
        print(
            f"refused: {entry.source}: a worker would dead-letter it again: {why}", file=sys.stderr
        )
    for entry, why in report.gone:
        print(f"skipped: {entry.source}: {why}", file=sys.stderr)
    summary = (
        f"{verb} {len(report.replayed)}, refused {len(report.refused)}, "
        f"gone {len(report.gone)}"
        + (f", {report.repeated} repeated dead letters" if report.repeated else "")
    )
    if report.dry_run:
        summary += " (dry run: nothing sent)"
    elif report.replayed:
        summary += " (a replayed event_id a worker already applied is dropped as a duplicate)"
    print(summary)
