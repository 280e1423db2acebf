"""The `orchestrator` command line's arguments; each command names its handler lazily.

A handler is a "module:function" string, imported only when its command runs, so
`orchestrator validate` never loads faust, aiokafka or redis.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from orchestrator.cli.argument_types import positive_count
from orchestrator.cli.audit_parser import add_audit_commands, add_measure_commands

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
    _connectors(commands)
    _feedback(commands)
    _operator(commands)
    _ops(commands)
    _dev(commands)
    _api(commands)
    add_audit_commands(commands)
    add_measure_commands(commands)
    _backtest(commands)
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
    validate.add_argument(
        "--risks",
        action="store_true",
        help="also list each journey's touch-point dependencies and single points of failure",
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
    schema.add_argument(
        "--tasks",
        type=Path,
        metavar="FILE",
        help="instead, write the task files' JSON Schema to FILE (journeys/tasks/task.schema.json)",
    )
    schema.set_defaults(handler=f"{_CLI}.offline:schema")


def _runtime(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser("worker", help="run a journey worker (Kafka + Redis)")
    worker.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    worker.set_defaults(handler=f"{_CLI}.worker:worker")


def _connectors(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    connectors = commands.add_parser(
        "connectors", help="deliver outbound messages to providers (email, sms, whatsapp, webhook)"
    )
    connectors.add_argument(
        "--channels",
        metavar="LIST",
        help="comma-separated channels to serve (default: every configured one)",
    )
    connectors.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    connectors.set_defaults(handler=f"{_CLI}.connectors:connectors")

    bounces = commands.add_parser(
        "bounces",
        help="take delivery status notifications (DSNs) for the VERP bounce domain by SMTP",
    )
    bounces.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    bounces.set_defaults(handler=f"{_CLI}.bounces:bounces")


def _feedback(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rules = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: `feedback --rules X reroute` keeps X (an action's own default would undo it).
    rules.add_argument(
        "--rules",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="routing rules file (default: ORCHESTRATOR_FEEDBACK_RULES)",
    )
    feedback = commands.add_parser(
        "feedback",
        parents=[rules],
        help="route free-text feedback to the owning teams (run, reroute, route --dry-run)",
    )
    feedback.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    feedback.set_defaults(handler=f"{_CLI}.feedback:router")
    actions = feedback.add_subparsers(dest="feedback_command", metavar="ACTION")
    reroute = actions.add_parser(
        "reroute", parents=[rules], help="route a past range of events again with the current rules"
    )
    reroute.add_argument("--from", dest="since", required=True, metavar="ISO8601")
    reroute.add_argument("--until", required=True, metavar="ISO8601")
    reroute.set_defaults(handler=f"{_CLI}.feedback:reroute")
    route = actions.add_parser(
        "route", parents=[rules], help="show where each line of a file would go (no Kafka)"
    )
    route.add_argument(
        "--dry-run",
        required=True,
        metavar="FILE",
        help="text (one item a line) or .jsonl (events, or {text, locale, source, ...})",
    )
    route.add_argument("--width", type=int, default=120, help="table width in characters")
    route.set_defaults(handler=f"{_CLI}.feedback:dry_run")


def _operator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    deploy = commands.add_parser("deploy", help="validate and deploy journeys to every worker")
    deploy.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    deploy.add_argument("--templates", type=Path, action="append", default=[], metavar="DIR")
    deploy.add_argument("--operator", help="who deploys (default $ORCHESTRATOR_OPERATOR)")
    deploy.add_argument(
        "--dry-run", action="store_true",
        help="deploy nothing: backtest the files against the last ORCHESTRATOR_BACKTEST_WINDOW "
        "of real events and print the comparison with what is deployed",
    )  # fmt: skip
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
    journeys.add_argument(
        "--exact", action="store_true",
        help="show: also exact counts from the audit store (ORCHESTRATOR_DATABASE_URL)",
    )  # fmt: skip
    journeys.set_defaults(handler=f"{_CLI}.operator:journeys")

    publish = commands.add_parser("publish", help="send events from a JSON Lines file")
    publish.add_argument("events", metavar="EVENTS.jsonl")
    publish.set_defaults(handler=f"{_CLI}.operator:publish")


def _ops(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = commands.add_parser("topics", help="create the runtime's topics, or print one")
    actions = topics.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create missing topics (idempotent)")
    create.set_defaults(handler=f"{_CLI}.operator:topics")
    dump = actions.add_parser(
        "dump",
        help="print a topic's records without joining any consumer group",
        description="Print records with partition, offset, time, key and decoded value. "
        "Reads from the beginning up to the current end, unless --last or --follow.",
    )
    dump.add_argument(
        "topic", metavar="TOPIC", help="events, outbound, interactions, deadletter, journeys, "
        "or a full topic name",
    )  # fmt: skip
    start = dump.add_mutually_exclusive_group()
    start.add_argument(
        "--from-beginning", action="store_true", help="with --follow: print what is there first"
    )
    start.add_argument(
        "--last", type=positive_count, metavar="N", help="the last N of each partition"
    )
    dump.add_argument("--partition", type=int, metavar="P")
    dump.add_argument("--key", metavar="K", help="only records with this key")
    dump.add_argument("--limit", type=positive_count, metavar="N", help="stop after N records")
    dump.add_argument("--follow", action="store_true", help="keep printing new records")
    dump.add_argument("--jsonl", action="store_true", help="one JSON object per record")
    dump.set_defaults(handler=f"{_CLI}.ops:dump")

    lag = commands.add_parser(
        "lag", help="a consumer group's lag per partition, and overdue timers"
    )
    lag.add_argument("--group", metavar="G", help="default: $ORCHESTRATOR_GROUP_ID")
    lag.add_argument("--json", action="store_true", help="one JSON object, for machines")
    lag.set_defaults(handler=f"{_CLI}.ops:lag")

    deadletters = commands.add_parser(
        "deadletters", help="list dead letters, or replay their originals after a fix"
    )
    actions = deadletters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every dead letter, with reason and source")
    listing.add_argument("--reason", metavar="TEXT", help="only reasons containing TEXT")
    listing.add_argument("--limit", type=positive_count, metavar="N")
    listing.add_argument(
        "--jsonl",
        metavar="FILE",
        help="also write the originals that are JSON objects to FILE, to fix and `publish`",
    )
    listing.set_defaults(handler=f"{_CLI}.ops:deadletters_list")
    replay = actions.add_parser(
        "replay", help="send the originals to events again (those a worker would accept)"
    )
    replay.add_argument("--reason", metavar="TEXT", help="only reasons containing TEXT")
    replay.add_argument("--dry-run", action="store_true", help="say what would be sent")
    replay.set_defaults(handler=f"{_CLI}.ops:deadletters_replay")


def _backtest(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backtest = commands.add_parser(
        "backtest",
        help="replay a window of real events through draft journeys and the deployed ones",
        description="Replay the retained events of a window through the deployed journeys and "
        "the draft files, side by side; or, with --verify, replay what is deployed and compare "
        "it message by message with what the live system sent (the audit store).",
    )
    backtest.add_argument("paths", nargs="*", metavar="JOURNEY_FILE")
    backtest.add_argument("--templates", type=Path, action="append", default=[], metavar="DIR")
    backtest.add_argument("--since", metavar="DURATION", help="the last DURATION, e.g. 7d")
    backtest.add_argument("--from", dest="start", metavar="ISO8601", help="window start")
    backtest.add_argument("--until", metavar="ISO8601", help="window end (default: now)")
    who = backtest.add_mutually_exclusive_group()
    who.add_argument("--customers", type=positive_count, metavar="N", help="only N customers")
    who.add_argument(
        "--sample", type=float, metavar="P", help="only a fraction P of customers, e.g. 0.1"
    )
    backtest.add_argument(
        "--verify", nargs="?", const="*", metavar="JOURNEY",
        help="replay the deployed versions (or JOURNEY's) and compare with the audit store; "
        "exit 1 on a difference without a known cause",
    )  # fmt: skip
    backtest.add_argument("--json", action="store_true", help="one JSON object, for machines")
    backtest.add_argument("--no-progress", action="store_true", help="no progress bar")
    backtest.set_defaults(handler=f"{_CLI}.backtest:backtest")


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


def _api(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = commands.add_parser("api", help="serve the HTTP API (ingest, journeys, customers)")
    api.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    api.set_defaults(handler=f"{_CLI}.api:api")

    keys = commands.add_parser("keys", help="create, list or revoke API keys")
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument("key_id", nargs="?", metavar="ID", help="the key to revoke")
    keys.add_argument("--role", choices=["publisher", "operator", "auditor", "admin"])
    keys.add_argument("--name", help="who or what the key is for")
    keys.add_argument(
        "--grant", action="append", choices=["pii"],
        help="an extra right (repeatable); pii: an operator sees personal fields unmasked",
    )  # fmt: skip
    keys.add_argument("--operator", help="who creates or revokes (default $ORCHESTRATOR_OPERATOR)")
    keys.set_defaults(handler=f"{_CLI}.api:keys")
