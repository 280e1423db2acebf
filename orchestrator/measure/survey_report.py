"""Survey figures as terminal tables (rich): NPS, CSAT, and the newest comments."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from orchestrator.measure.surveys import SurveyFigures

__all__ = ["render"]

# A terminal report shows the newest comments; the API serves them all.
_COMMENTS_SHOWN = 20


def render(console: Console, figures: SurveyFigures) -> None:
    """Print NPS and CSAT per week, journey and channel, then the newest comments."""
    if not (figures.nps or figures.csat):
        console.print("Surveys: no answers yet.")
        return
    if figures.nps:
        table = Table(title="NPS (0-10): % promoters (9-10) - % detractors (0-6)")
        for name in ("week", "journey", "channel"):
            table.add_column(name)
        for name in ("responses", "promoters", "passives", "detractors", "NPS"):
            table.add_column(name, justify="right")
        for row in figures.nps:
            table.add_row(
                row.week, row.journey or "-", row.channel, str(row.responses),
                str(row.promoters), str(row.passives), str(row.detractors), f"{row.score:+.1f}",
            )  # fmt: skip
        console.print(table)
    if figures.csat:
        table = Table(title="CSAT (1-5): share answering 4 or 5")
        for name in ("week", "journey", "channel"):
            table.add_column(name)
        for name in ("responses", "satisfied", "CSAT %"):
            table.add_column(name, justify="right")
        for c in figures.csat:
            table.add_row(
                c.week, c.journey or "-", c.channel, str(c.responses), str(c.satisfied),
                f"{c.score:.1f}",
            )  # fmt: skip
        console.print(table)
    if figures.comments:
        count = len(figures.comments)
        shown = f"newest {_COMMENTS_SHOWN} of {count}" if count > _COMMENTS_SHOWN else str(count)
        table = Table(title=f"Comments ({shown})")
        for name in ("at", "journey", "channel", "survey", "score", "comment"):
            table.add_column(name, justify="right" if name == "score" else "left")
        for comment in figures.comments[:_COMMENTS_SHOWN]:
            table.add_row(
                comment.at, comment.journey or "-", comment.channel, comment.survey,
                str(comment.score), comment.text,
            )  # fmt: skip
        console.print(table)
