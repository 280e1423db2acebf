"""Orchestrator: omnichannel customer journeys as code, on Kafka and Redis."""

from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import Catalog, DeployedJourney, catalog_of
from orchestrator.engine.events import Event, parse_event
from orchestrator.engine.state import CustomerState
from orchestrator.journey.library import load_journeys

__all__ = [
    "Catalog",
    "CustomerState",
    "DeployedJourney",
    "Event",
    "advance",
    "catalog_of",
    "load_journeys",
    "parse_event",
]
