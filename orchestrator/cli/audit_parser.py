"""Arguments of the audit store's commands (`db`, `audit-sink`, `audit`, `customers`) and of
the figures read from it (`report`, `measure`); handlers named lazily, as in `parser.py`."""

from __future__ import annotations

import argparse

from orchestrator.cli.argument_types import audit_shard, positive_count

__all__ = ["add_audit_commands", "add_measure_commands"]

_CLI = "orchestrator.cli"


def _audit_filters(command: argparse.ArgumentParser) -> None:
    command.add_argument("--customer", metavar="ID")
    command.add_argument("--from", dest="since", metavar="ISO8601", help="at or after")
    command.add_argument("--until", metavar="ISO8601", help="before")
    command.add_argument("--channel", metavar="NAME")
    command.add_argument("--journey", metavar="ID")
    command.add_argument(
        "--kind", action="append", metavar="KIND", help="record type, e.g. send (repeatable)"
    )
    command.add_argument(
        "--direction", action="append", choices=["inbound", "outbound"], help="(repeatable)"
    )
    command.add_argument("--newest-first", action="store_true", help="default: oldest first")


def add_audit_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`db`, `audit-sink`, `audit` and `customers`."""
    database = commands.add_parser("db", help="the audit store's database schema")
    actions = database.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply the schema migrations not applied yet")
    upgrade.set_defaults(handler=f"{_CLI}.audit:db_upgrade")

    sink = commands.add_parser(
        "audit-sink", help="store the interactions topic in the audit store, exactly once"
    )
    sink.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    sink.add_argument(
        "--shard", type=audit_shard, metavar="I/N",
        help="store only the partitions p with p %% N == I; run one sink per I from 0 to N-1 "
        "(default: ORCHESTRATOR_AUDIT_SINK_SHARD, 0/1: every partition)",
    )  # fmt: skip
    sink.set_defaults(handler=f"{_CLI}.audit:audit_sink")

    audit = commands.add_parser("audit", help="query, export and verify the audit store")
    actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    query = actions.add_parser("query", help="one page of records as JSON Lines")
    _audit_filters(query)
    query.add_argument("--limit", type=positive_count, default=100, metavar="N")
    query.add_argument("--cursor", metavar="C", help="the next page's cursor a query printed")
    query.set_defaults(handler=f"{_CLI}.audit:query", command_name="query")
    timeline = actions.add_parser(
        "timeline", help="a customer's inbound and outbound interactions, in order"
    )
    timeline.add_argument("customer", metavar="CUSTOMER_ID")
    timeline.add_argument("--limit", type=positive_count, default=100, metavar="N")
    timeline.add_argument("--cursor", metavar="C")
    timeline.add_argument("--newest-first", action="store_true")
    timeline.set_defaults(handler=f"{_CLI}.audit:query", command_name="timeline")
    export = actions.add_parser("export", help="every matching record, streamed")
    _audit_filters(export)
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", metavar="FILE", help="default: stdout")
    export.set_defaults(handler=f"{_CLI}.audit:export")
    verify = actions.add_parser(
        "verify", help="check the hash chains; name the first altered record"
    )
    verify.add_argument("--customer", metavar="ID")
    verify.add_argument("--from", dest="since", metavar="ISO8601")
    verify.add_argument("--until", metavar="ISO8601")
    verify.set_defaults(handler=f"{_CLI}.audit:verify_store")
    checkpoint = actions.add_parser("checkpoint", help="checkpoint the chain heads now")
    checkpoint.set_defaults(handler=f"{_CLI}.audit:checkpoint")
    retention = actions.add_parser(
        "retention", help="drop the monthly partitions of records older than a duration"
    )
    retention.add_argument(
        "--older-than", required=True, metavar="DURATION", help="e.g. 365d: whole months before"
    )
    retention.add_argument("--dry-run", action="store_true", help="say what would be dropped")
    retention.add_argument("--operator", help="who runs it (default $ORCHESTRATOR_OPERATOR)")
    retention.set_defaults(handler=f"{_CLI}.audit:retention")

    customers = commands.add_parser("customers", help="customer data in the audit store")
    actions = customers.add_subparsers(dest="action", required=True, metavar="ACTION")
    erase = actions.add_parser(
        "erase", help="erase a customer: crypto-shred their personal fields, drop their state"
    )
    erase.add_argument("customer_id", metavar="ID")
    erase.add_argument("--operator", help="who erases (default $ORCHESTRATOR_OPERATOR)")
    erase.set_defaults(handler=f"{_CLI}.audit:erase")


def add_measure_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`report` and `measure`."""
    report = commands.add_parser(
        "report", help="journey figures from the audit store: all journeys, or one in detail"
    )
    report.add_argument("journey", nargs="?", metavar="JOURNEY")
    report.add_argument("--version", type=int, metavar="N", help="one version (default: all)")
    report.set_defaults(handler=f"{_CLI}.report:report")

    measure = commands.add_parser("measure", help="the journey figures' tables")
    actions = measure.add_subparsers(dest="action", required=True, metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild", help="count the journey figures again from every record in the audit store"
    )
    rebuild.set_defaults(handler=f"{_CLI}.report:rebuild")
