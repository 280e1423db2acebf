"""`orchestrator` command line. Each command's code is imported only when that command runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence

from orchestrator.cli.parser import build_parser
from orchestrator.errors import OrchestratorError

__all__ = ["build_parser", "main"]


def _handler(name: str) -> Callable[[argparse.Namespace], int]:
    """Import the "module:function" a command names."""
    module, _, function = name.partition(":")
    handler: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(module), function
    )
    return handler


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
        code: int = _handler(args.handler)(args)
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
