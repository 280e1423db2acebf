"""`orchestrator report [JOURNEY] [--version N]`: journey figures as terminal tables."""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console

from orchestrator.audit.db import connection, require_schema
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import load_settings
from orchestrator.measure import figures
from orchestrator.measure.terminal import render_journey, render_journeys

__all__ = ["report"]


def report(args: argparse.Namespace) -> int:
    """Print every journey's headline figures, or one journey's in full."""
    settings = load_settings()
    if args.version is not None and args.journey is None:
        raise ConfigurationError(
            "--version needs a JOURNEY: give `orchestrator report JOURNEY --version N`"
        )
    console = Console()

    async def main() -> int:
        async with connection(settings.database_url) as conn:
            await require_schema(conn)
            if args.journey is None:
                render_journeys(console, await figures.journeys(conn))
                return 0
            found = await figures.journey_figures(conn, args.journey, args.version)
            experiments = await figures.experiments(conn, args.journey, args.version)
        render_journey(console, found, experiments)
        return 0

    return asyncio.run(main())
