"""`orchestrator` command line: validate, simulate and the runtime commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from orchestrator.engine.catalog import catalog_of
from orchestrator.errors import JourneyValidationError, OrchestratorError
from orchestrator.journey.library import journey_schema, load_journeys, read_sources
from orchestrator.journey.loader import validate_sources
from orchestrator.runtime.commands import register as register_runtime_commands
from orchestrator.simulate import Simulator, read_events_file, write_records
from orchestrator.timefmt import parse_instant

__all__ = ["main"]


def _validate(args: argparse.Namespace) -> int:
    sources, problems = read_sources(args.paths, args.templates)
    compiled, more = validate_sources(sources)
    problems.extend(more)
    for problem in problems:
        print(problem)
    if not sources and not problems:
        print(
            "no journey files found: pass .yaml files or a directory holding them", file=sys.stderr
        )
        return 1
    if problems:
        return 1
    print(f"ok: {len(compiled)} journeys valid", file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
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
    simulator = Simulator(catalog_of(journeys))
    write_records(simulator.run(events, until), sys.stdout, sys.stderr)
    if simulator.truncated:
        print(
            "warning: stopped after too many timer firings; pass --until to bound the run",
            file=sys.stderr,
        )
    return 1 if bad else 0


def _schema(args: argparse.Namespace) -> int:
    text = journey_schema()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The full command-line interface."""
    parser = argparse.ArgumentParser(prog="orchestrator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser("validate", help="check journey files; one line per problem")
    validate.add_argument("paths", nargs="+", metavar="PATH")
    validate.add_argument(
        "--templates",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="extra template directory (repeatable)",
    )
    validate.set_defaults(handler=_validate)

    simulate = commands.add_parser("simulate", help="replay events in virtual time")
    simulate.add_argument("paths", nargs="+", metavar="JOURNEY_OR_DIR")
    simulate.add_argument("--events", required=True, metavar="EVENTS.jsonl")
    simulate.add_argument("--until", metavar="ISO8601", help="fire timers up to this instant")
    simulate.add_argument("--templates", type=Path, action="append", default=[], metavar="DIR")
    simulate.set_defaults(handler=_simulate)

    schema = commands.add_parser("schema", help="print the journey JSON Schema")
    schema.add_argument("--output", metavar="FILE")
    schema.set_defaults(handler=_schema)
    register_runtime_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `orchestrator` console script.

    Every failure ends as one line on stderr, `error: <what failed>: <what to do>`, and exit
    code 1 (argparse's usage errors exit 2); ORCHESTRATOR_DEBUG=1 shows the traceback of
    unexpected ones.
    """
    args = build_parser().parse_args(argv)
    # The client library logs each failed connection attempt at ERROR, which would print a
    # second, raw line next to ours; the worker configures its own logging instead.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    if args.command != "worker":
        quiet.setLevel(logging.CRITICAL)
    try:
        code: int = args.handler(args)
    except OrchestratorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.filename is None:
            return _unexpected(exc)
        # Files named on the command line: missing, unreadable, a directory...
        print(f"error: cannot read {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, not a traceback
        return _unexpected(exc)
    finally:
        quiet.setLevel(level)
    return code


def _unexpected(exc: Exception) -> int:
    if os.environ.get("ORCHESTRATOR_DEBUG") == "1":
        raise exc
    text = " ".join(str(exc).split()) or "no message"
    print(
        f"error: unexpected {type(exc).__name__}: {text} "
        "(run with ORCHESTRATOR_DEBUG=1 for the traceback)",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
