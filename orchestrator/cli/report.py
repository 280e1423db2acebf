"""`orchestrator report [JOURNEY] [--version N]`: journey figures as terminal tables; and
`orchestrator measure rebuild`: the figures counted again from the whole audit store."""

from __future__ import annotations

import argparse
import asyncio

from rich.console import Console

from orchestrator.audit.db import connection, require_schema
from orchestrator.audit.personal import PersonalFields
from orchestrator.errors import ConfigurationError
from orchestrator.infra.settings import load_settings
from orchestrator.measure import figures
from orchestrator.measure.rebuild import rebuild_journey_figures
from orchestrator.measure.survey_answers import read_answers
from orchestrator.measure.survey_report import render as render_surveys
from orchestrator.measure.surveys import survey_figures
from orchestrator.measure.terminal import render_journey, render_journeys

__all__ = ["rebuild", "report"]


def report(args: argparse.Namespace) -> int:
    """Print every journey's headline figures, or one journey's in full; then the surveys'
    NPS and CSAT (of that journey)."""
    settings = load_settings()
    if args.version is not None and args.journey is None:
        raise ConfigurationError(
            "--version needs a JOURNEY: give `orchestrator report JOURNEY --version N`"
        )
    console = Console()
    personal = PersonalFields.from_setting(settings.audit_personal_fields)

    async def main() -> int:
        async with connection(settings.database_url) as conn:
            await require_schema(conn)
            if args.journey is None:
                render_journeys(console, await figures.journeys(conn))
            else:
                found = await figures.journey_figures(conn, args.journey, args.version)
                experiments = await figures.experiments(conn, args.journey, args.version)
                render_journey(console, found, experiments)
            # Surveys are per journey, not per version: answers name no version.
            read = await read_answers(conn, personal, journey=args.journey)
        render_surveys(console, survey_figures(read.answers))
        return 0

    return asyncio.run(main())


def rebuild(args: argparse.Namespace) -> int:
    """Empty the journey figures and count them again from every stored record."""
    settings = load_settings()

    async def main() -> int:
        async with connection(settings.database_url) as conn:
            await require_schema(conn)
            personal = PersonalFields.from_setting(settings.audit_personal_fields)
            read = await rebuild_journey_figures(conn, personal)
        print(f"journey figures rebuilt from {read} stored records")
        return 0

    return asyncio.run(main())
