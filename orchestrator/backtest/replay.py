"""Replaying one customer's window through the engine, with `Simulator`, for each catalog.

A customer starts the window with what can be known of them (see `start_state`), then the
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

__all__ = ["START_STATE_NOTES", "replay_customer", "start_state"]

START_STATE_NOTES = (
    "profile and consent: rebuilt from the profile.updated and consent.updated events still "
    "retained from before the window",
    "not known, so not reconstructed: journey instances already running at the window's "
    "start, entry history (re-entry rules), sends counted by frequency and global caps, and "
    "the suppression list; profile changes made by update_profile steps before the window",
    "events older than the topic's retention are gone: customers start as far as the oldest "
    "retained event allows",
)
"""What a backtest knows of each customer at the window's start, and what it does not."""


def start_state(customer_id: str, before: Iterable[Event], config: EngineConfig) -> CustomerState:
    """The customer as the events published before the window left them, with no journey
    deployed: the engine itself applies them, so profile and consent change exactly as live."""
    state = CustomerState(customer_id)
    for event in before:
        state, _ = advance(state, event, {}, event.occurred_at, config)
    return state


def replay_customer(
    customer: CustomerEvents,
    catalogs: Sequence[Catalog],
    config: EngineConfig,
    window: Window,
) -> list[list[Action]]:
    """Each catalog's actions for one customer over the window (timers up to its end)."""
    start = start_state(customer.customer_id, customer.before, config)
    outcomes: list[list[Action]] = []
    for catalog in catalogs:
        simulator = Simulator(catalog, config)
        simulator.states[customer.customer_id] = start.clone()
        outcomes.append(list(simulator.run(customer.window, until=window.end)))
    return outcomes
