"""Commands that need no Kafka or Redis: validate, simulate, schema."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orchestrator.contracts.schemas import contract_schemas
from orchestrator.engine.catalog import catalog_of
from orchestrator.errors import ConfigurationError, JourneyValidationError
from orchestrator.infra.settings import load_settings
from orchestrator.journey.dependencies import journey_dependencies
from orchestrator.journey.library import (
    journey_schema,
    load_journeys,
    read_sources,
    read_tasks,
    split_task_paths,
    task_schema,
)
from orchestrator.journey.loader import validate_sources
from orchestrator.journey.plan import CompiledJourney
from orchestrator.journey.routing import is_routing_file, validate_routing_files
from orchestrator.journey.source import discover_journey_files
from orchestrator.simulate import Simulator, read_events_file, write_records
from orchestrator.timefmt import parse_instant

__all__ = ["schema", "simulate", "validate"]


def validate(args: argparse.Namespace) -> int:
    journey_paths, task_paths = split_task_paths(args.paths)
    # Files in a directory named `routing` are feedback routing rules (docs/feedback.md).
    files = discover_journey_files(journey_paths)
    routing_files = [path for path in files if is_routing_file(path)]
    sources, problems = read_sources(
        [path for path in files if not is_routing_file(path)], args.templates
    )
    compiled, more = validate_sources(sources)
    problems.extend(more)
    tasks, more = read_tasks(task_paths)
    problems.extend(more)
    tables, more = validate_routing_files(routing_files)
    problems.extend(more)
    for problem in problems:
        print(problem)
    if not sources and not task_paths and not tables and not problems:
        print(
            "no journey files found: pass .yaml files or a directory holding them", file=sys.stderr
        )
        return 1
    if problems:
        return 1
    found = [f"{len(compiled)} journeys valid"] if sources or not (task_paths or tables) else []
    found += [f"{len(tasks)} tasks valid"] if task_paths else []
    found += [f"{len(tables)} rules files valid (feedback routing)"] if tables else []
    print(f"ok: {', '.join(found)}", file=sys.stderr)
    if args.risks:
        _print_risks(compiled)
    return 0


def _print_risks(journeys: list[CompiledJourney]) -> None:
    """Per journey, what its sends depend on, then one line per single point of failure."""
    count = 0
    for journey in journeys:
        deps = journey_dependencies(journey)
        hosts = ", ".join(deps.link_hosts) or "none"
        print(f"{deps.journey}: providers {', '.join(deps.providers) or 'none'}; links to {hosts}")
        for send in deps.single_points:
            count += 1
            print(f"{deps.journey}: step {send.step}: single point of failure: {send.single_point}")
    print(f"{count} single points of failure in {len(journeys)} journeys", file=sys.stderr)


def simulate(args: argparse.Namespace) -> int:
    try:
        journeys = load_journeys(args.paths, args.templates)
    except JourneyValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    try:
        until = parse_instant(args.until) if args.until else None
    except ValueError as exc:
        print(f"--until: {exc}", file=sys.stderr)
        return 2
    numbered, bad = read_events_file(args.events)
    events = [event for _, event in numbered]
    for line in bad:
        print(f"{args.events}:{line.number}: skipped: {line.reason}", file=sys.stderr)
    try:
        # The same guards across journeys (ORCHESTRATOR_GLOBAL_CAP) as the journey workers.
        config = load_settings().engine_config()
    except ConfigurationError as exc:
        print(exc, file=sys.stderr)
        return 2
    simulator = Simulator(catalog_of(journeys), config)
    write_records(simulator.run(events, until), sys.stdout, sys.stderr)
    if simulator.truncated:
        print(
            "warning: stopped after too many timer firings; pass --until to bound the run",
            file=sys.stderr,
        )
    return 1 if bad else 0


def schema(args: argparse.Namespace) -> int:
    if args.contracts:
        args.contracts.mkdir(parents=True, exist_ok=True)
        for name, text in contract_schemas().items():
            (args.contracts / name).write_text(text, encoding="utf-8")
            print(args.contracts / name)
        return 0
    if args.tasks:
        args.tasks.write_text(task_schema(), encoding="utf-8")
        print(args.tasks)
        return 0
    text = journey_schema()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
