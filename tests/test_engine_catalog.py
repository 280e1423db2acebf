"""Which journeys an event enters: the trigger index follows the catalog it is given."""

from __future__ import annotations

from orchestrator.engine.actions import Entered
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import DeployedJourney, catalog_of
from orchestrator.engine.events import Event
from orchestrator.engine.state import CustomerState
from tests.journey_fixtures import REACHABLE, T0, compile_journey


def journey(journey_id: str, trigger: str) -> str:
    return f"""\
    id: {journey_id}
    name: {journey_id}
    trigger: {{event: {trigger}}}
    steps:
      - id: pause
        wait: 1h
    """


def entered(catalog: dict[str, DeployedJourney], name: str, event_id: str) -> list[str]:
    customer = CustomerState("c1", profile=dict(REACHABLE))
    _, actions = advance(customer, Event(event_id, "c1", name, T0), catalog, T0)
    return [a.journey for a in actions if isinstance(a, Entered)]


def test_an_event_enters_the_journeys_it_triggers_in_id_order() -> None:
    catalog = catalog_of(
        compile_journey(journey(journey_id, trigger))
        for journey_id, trigger in (("zeta", "signup"), ("alpha", "signup"), ("mid", "order"))
    )
    assert entered(catalog, "signup", "e1") == ["alpha", "zeta"]
    assert entered(catalog, "order", "e2") == ["mid"]
    assert entered(catalog, "refund", "e3") == []


def test_a_catalog_changed_in_place_is_read_again() -> None:
    catalog = catalog_of([compile_journey(journey("first", "signup"))])
    assert entered(catalog, "signup", "e1") == ["first"]
    catalog["second"] = DeployedJourney({1: compile_journey(journey("second", "signup"))}, 1)
    assert entered(catalog, "signup", "e2") == ["first", "second"]
    catalog["first"] = DeployedJourney(catalog["first"].versions, 1, status="paused")
    assert entered(catalog, "signup", "e3") == ["second"]
    catalog["second"] = DeployedJourney({1: compile_journey(journey("second", "order"))}, 1)
    assert entered(catalog, "signup", "e4") == []
