"""`orchestrator backtest` and `orchestrator deploy --dry-run`: replay real traffic through a
draft and the deployed journeys, or check the replay against what the live system sent."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator import jsonwire
from orchestrator.backtest.comparison import PhaseProgress, run_backtest
from orchestrator.backtest.render import render_report, render_verification
from orchestrator.backtest.verify import verify_window
from orchestrator.backtest.window import BacktestInputError, Selection, Window, window_of
from orchestrator.cli.operator import require_topic, run_converting
from orchestrator.errors import JourneyValidationError
from orchestrator.infra.names import TopicNames
from orchestrator.infra.settings import Settings, load_settings
from orchestrator.journey.library import read_sources

__all__ = ["backtest", "dry_run"]


def _topics_exist(settings: Settings) -> None:
    """Fail at once, with the fix, when the deploy log or the events topic is missing."""
    topics = TopicNames(settings.topic_prefix)
    for topic in (topics.journeys, topics.events):
        run_converting(settings, require_topic(settings, topic))


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[PhaseProgress | None]:
    """A progress bar on stderr (a terminal only), one task per phase (reading, replaying)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    with Progress(
        TextColumn("{task.description:10}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=Console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        tasks: dict[str, object] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)  # type: ignore[arg-type]

        yield update


def backtest(args: argparse.Namespace) -> int:
    settings = load_settings()
    window = window_of(args.since, args.start, args.until)
    selection = Selection(args.customers, args.sample)
    if args.verify is None:
        if not args.paths:
            raise BacktestInputError("name the draft journey files to backtest (or use --verify)")
        return _compare(
            args.paths, args.templates, window, selection, json=args.json, bar=not args.no_progress
        )
    if args.paths:
        raise BacktestInputError(
            "--verify replays what is deployed: name a journey id after --verify, no files"
        )
    journey = None if args.verify == "*" else args.verify
    _topics_exist(settings)
    with _progress_bar(not args.no_progress) as progress:
        result = run_converting(
            settings, verify_window(settings, journey, window, selection, progress)
        )
    _print(result.to_json(), render_verification, json=args.json)
    return 1 if result.unexplained else 0


def dry_run(args: argparse.Namespace) -> int:
    """`deploy --dry-run`: the backtest of the files over the default window, no deploy."""
    window = window_of(load_settings().backtest_window, None, None)
    return _compare(args.paths, args.templates, window, Selection(), json=False, bar=True)


def _compare(
    paths: list[str], templates: list[Path], window: Window, selection: Selection, *,
    json: bool, bar: bool,
) -> int:  # fmt: skip
    sources, problems = read_sources(paths, templates)
    if problems:
        # main prints it as `error: <each problem>` and exits 1
        raise JourneyValidationError(problems)
    settings = load_settings()
    _topics_exist(settings)
    with _progress_bar(bar) as progress:
        report = run_converting(
            settings, run_backtest(settings, sources, window, selection, progress=progress)
        )
    _print(report.to_json(), render_report, json=json)
    return 0


def _print(
    data: dict[str, Any], render: Callable[[dict[str, Any], Console], None], *, json: bool
) -> None:
    """One JSON object on stdout (`--json`), or rich tables."""
    if json:
        sys.stdout.write(jsonwire.dumps(data).decode() + "\n")
    else:
        render(data, Console())
