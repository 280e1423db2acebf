"""The projections `orchestrator audit-sink` keeps current in each batch's transaction.

Add a projection here (one line) to have the sink feed it; its tables come from a migration
in `orchestrator/audit/migrations/`.
"""

from __future__ import annotations

from orchestrator.audit.projection import Projection
from orchestrator.measure.journeys import JourneyProjection

__all__ = ["projections"]


def projections() -> list[Projection]:
    """Every measurement projection, in the order the sink applies them."""
    return [JourneyProjection()]
