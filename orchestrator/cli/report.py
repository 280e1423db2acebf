"""`orchestrator report [JOURNEY] [--version N]`: journey figures as terminal tables, with a
deployed journey's touch-point dependency map (without a JOURNEY: every journey's headline and
the customer-perceived cycle time of each task file in `ORCHESTRATOR_TASKS_DIR`); and
`orchestrator measure rebuild`: the figures counted again from the whole audit store (the
task figures kept per customer dropped, to be computed again at the next call).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from rich.console import Console

from orchestrator.audit.db import connection, require_schema
from orchestrator.audit.personal import PersonalFields
from orchestrator.control.dependencies import live_dependencies
from orchestrator.control.operations import JourneyOperations
from orchestrator.errors import ConfigurationError, JourneyValidationError
from orchestrator.infra.settings import load_settings
from orchestrator.journey.library import load_tasks
from orchestrator.measure import dependency_report, figures, task_report
from orchestrator.measure.rebuild import rebuild_journey_figures
from orchestrator.measure.survey_answers import read_answers
from orchestrator.measure.survey_report import render as render_surveys
from orchestrator.measure.surveys import survey_figures
from orchestrator.measure.task_cache import clear_task_cache, measure_tasks
from orchestrator.measure.terminal import render_journey, render_journeys

__all__ = ["rebuild", "report"]


def report(args: argparse.Namespace) -> int:
    """Print every journey's headline figures and the tasks' cycle times, or one journey's
    figures in full and its live dependencies; then the surveys' NPS and CSAT (of that
    journey)."""
    settings = load_settings()
    if args.version is not None and args.journey is None:
        raise ConfigurationError(
            "--version needs a JOURNEY: give `orchestrator report JOURNEY --version N`"
        )
    console = Console()
    tasks_dir = Path(settings.tasks_dir)
    try:
        tasks = load_tasks([tasks_dir]) if args.journey is None and tasks_dir.is_dir() else []
    except JourneyValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1

    personal = PersonalFields.from_setting(settings.audit_personal_fields)

    async def main() -> int:
        async with connection(settings.database_url) as conn:
            await require_schema(conn)
            if args.journey is None:
                render_journeys(console, await figures.journeys(conn))
                found_tasks = await measure_tasks(conn, tasks, personal)
                task_report.render(console, {"tasks": [t.to_dict() for t in found_tasks]})
            else:
                found = await figures.journey_figures(conn, args.journey, args.version)
                experiments = await figures.experiments(conn, args.journey, args.version)
                render_journey(console, found, experiments)
            # Surveys are per journey, not per version: answers name no version.
            read = await read_answers(conn, personal, journey=args.journey)
        if args.journey is not None:
            live = await live_dependencies(JourneyOperations(settings), args.journey)
            if live is not None:
                dependency_report.render(console, live.to_json())
        render_surveys(console, survey_figures(read.answers))
        return 0

    return asyncio.run(main())


def rebuild(args: argparse.Namespace) -> int:
    """Empty the journey figures and count them again from every stored record; drop the
    task figures kept per customer."""
    settings = load_settings()

    async def main() -> int:
        async with connection(settings.database_url) as conn:
            await require_schema(conn)
            personal = PersonalFields.from_setting(settings.audit_personal_fields)
            read = await rebuild_journey_figures(conn, personal)
            dropped = await clear_task_cache(conn)
        print(f"journey figures rebuilt from {read} stored records")
        print(
            f"task figures kept for customers dropped ({dropped} rows): the next call computes them"
        )
        return 0

    return asyncio.run(main())
