"""The `orchestrator` command line's arguments; each command names its handler lazily.

A handler is a "module:function" string, imported only when its command runs, so
`orchestrator validate` never loads faust, aiokafka or redis.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["build_parser"]

_CLI = "orchestrator.cli"


def build_parser() -> argparse.ArgumentParser:
    """The full command-line interface."""
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Omnichannel customer journeys as code, on Kafka and Redis.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _offline(commands)
    _runtime(commands)
    _operator(commands)
    _dev(commands)
    return parser


def _offline(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    validate.set_defaults(handler=f"{_CLI}.offline:validate")

    simulate = commands.add_parser("simulate", help="replay events in virtual time")
    simulate.add_argument("paths", nargs="+", metavar="JOURNEY_OR_DIR")
    simulate.add_argument("--events", required=True, metavar="EVENTS.jsonl")
    simulate.add_argument("--until", metavar="ISO8601", help="fire timers up to this instant")
    simulate.add_argument("--templates", type=Path, action="append", default=[], metavar="DIR")
    simulate.set_defaults(handler=f"{_CLI}.offline:simulate")

    schema = commands.add_parser("schema", help="print the journey JSON Schema")
    schema.add_argument("--output", metavar="FILE")
    schema.add_argument(
        "--contracts",
        type=Path,
        metavar="DIR",
        help="instead, write each topic's record JSON Schema into DIR (e.g. docs/schemas)",
    )
    schema.set_defaults(handler=f"{_CLI}.offline:schema")


def _runtime(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser("worker", help="run a journey worker (Kafka + Redis)")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    worker.set_defaults(handler=f"{_CLI}.worker:worker")


def _operator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = commands.add_parser("topics", help="create the runtime's topics")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(handler=f"{_CLI}.operator:topics")

    deploy = commands.add_parser("deploy", help="validate and deploy journeys to every worker")
    deploy.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    deploy.add_argument("--templates", type=Path, action="append", default=[], metavar="DIR")
    deploy.add_argument("--operator", help="who deploys (default $ORCHESTRATOR_OPERATOR)")
    deploy.set_defaults(handler=f"{_CLI}.operator:deploy")

    journeys = commands.add_parser(
        "journeys", help="list, show, pause, resume, rollback, archive deployed journeys"
    )
    journeys.add_argument(
        "action", choices=["list", "show", "pause", "resume", "rollback", "archive"]
    )
    journeys.add_argument("journey", nargs="?")
    journeys.add_argument("--version", type=int, help="rollback target (default: previous)")
    journeys.add_argument("--operator")
    journeys.set_defaults(handler=f"{_CLI}.operator:journeys")

    publish = commands.add_parser("publish", help="send events from a JSON Lines file")
    publish.add_argument("events", metavar="EVENTS.jsonl")
    publish.set_defaults(handler=f"{_CLI}.operator:publish")


def _dev(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    demo.set_defaults(handler=f"{_CLI}.dev:demo")
