"""Argument types the commands share: argparse calls them on the text given."""

from __future__ import annotations

import argparse

from orchestrator.infra.shard import checked_shard

__all__ = ["audit_shard", "positive_count"]


def positive_count(text: str) -> int:
    """A positive whole number argument."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def audit_shard(text: str) -> str:
    """An audit sink's shard, `I/N` (checked here, so a typo never starts a sink)."""
    try:
        return checked_shard(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
