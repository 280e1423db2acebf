"""Replaying one customer's window through the engine, with `Simulator`, for each catalog.

A customer starts the window with what can be known of them (`lived_state` for a backtest:
their retained past replayed; `start_state` for `--verify`: profile and consent), then the
simulator applies their window events in event time and fires their timers up to the
window's end, exactly as `orchestrator simulate` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.backtest.spool import CustomerEvents
from orchestrator.backtest.window import Window
from orchestrator.engine.actions import Action
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.config import EngineConfig
from orchestrator.engine.events import Event
from orchestrator.engine.state import CustomerState
from orchestrator.simulate import Simulator

__all__ = ["START_STATE_NOTES", "lived_state", "replay_customer", "start_state"]

START_STATE_NOTES = (
    "each customer's retained past replayed first, through the journeys deployed now: "
    "journey instances running at the window's start (their waits and expiries fire in the "
    "window), entry history for re-entry rules, sends counted by frequency and global caps, "
    "the suppression list, profile and consent, update_profile changes",
    "instances run on the deployed versions; a draft's new version takes the entries made "
    "in the window, as a deploy would",
    "events older than the topic's retention are gone: customers start as far as the oldest "
    "retained event allows, and a journey redeployed before the window replays its past "
    "with today's version",
)
"""What a backtest knows of each customer at the window's start, and what it does not."""


def start_state(customer_id: str, before: Iterable[Event], config: EngineConfig) -> CustomerState:
    """The customer as the events published before the window left them, with no journey
    deployed: the engine itself applies them, so profile and consent change exactly as live."""
    state = CustomerState(customer_id)
    for event in before:
        state, _ = advance(state, event, {}, event.occurred_at, config)
    return state


def lived_state(
    customer_id: str, before: Iterable[Event], catalog: Catalog, config: EngineConfig, until: float
) -> CustomerState:
    """The customer as their past left them under `catalog`: the earlier events replayed
    and timers fired up to `until` (the window's start), what they sent dropped."""
    simulator = Simulator(catalog, config)
    for _ in simulator.run(before, until=until):
        pass
    return simulator.states.get(customer_id) or CustomerState(customer_id)


def replay_customer(
    customer: CustomerEvents,
    catalogs: Sequence[Catalog],
    config: EngineConfig,
    window: Window,
    history: Catalog | None = None,
) -> list[list[Action]]:
    """Each catalog's actions for one customer over the window (timers up to its end).

    With `history`, the customer starts as their past replayed under it left them
    (`lived_state`: running instances included); without, from their profile and consent
    only (`start_state`).
    """
    cid = customer.customer_id
    start = (
        start_state(cid, customer.before, config)
        if history is None
        else lived_state(cid, customer.before, history, config, window.start)
    )
    outcomes: list[list[Action]] = []
    for catalog in catalogs:
        simulator = Simulator(catalog, config)
        simulator.seed(start.clone())
        outcomes.append(list(simulator.run(customer.window, until=window.end)))
    return outcomes
