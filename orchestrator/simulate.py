"""Replay events against journeys in virtual time: marketing ops' dry run and our test oracle."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from orchestrator import jsonwire
from orchestrator.engine.actions import (
    Action,
    ConditionFailed,
    Entered,
    Exited,
    LateEvent,
    Sent,
    Suppressed,
    TimerFired,
    TimerSet,
)
from orchestrator.engine.advance import advance, fire_due
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.config import DEFAULT_CONFIG, EngineConfig
from orchestrator.engine.events import Event, parse_event
from orchestrator.engine.state import CustomerState
from orchestrator.errors import EventValidationError

__all__ = ["BadLine", "Simulator", "read_events", "read_events_file", "read_numbered_events"]

# Journeys that wait in a loop forever would never run out of timers; stop somewhere.
MAX_TIMER_FIRINGS = 1_000_000
_OUTPUT_TYPES = (Entered, Sent, Suppressed, Exited)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of the events file that could not be used, and why."""

    number: int
    reason: str


def read_numbered_events(
    lines: Iterable[bytes | str],
) -> tuple[list[tuple[int, Event]], list[BadLine]]:
    """Parse JSON Lines into (line number, event); blank lines skipped, bad ones reported.

    Lines may be bytes (a file opened in binary mode): each is decoded on its own, so one
    line that is not UTF-8 is a bad line like any other instead of ending the whole read.
    """
    events: list[tuple[int, Event]] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                # A byte-order mark (editors on Windows write one) is not part of the JSON.
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                bad.append(
                    BadLine(
                        number,
                        f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                        f"{exc.start + 1}): save the file as UTF-8",
                    )
                )
                continue
        else:
            line = raw
        if not line.strip():
            continue
        try:
            events.append((number, parse_event(jsonwire.loads(line))))
        except jsonwire.JSONDecodeError as exc:
            bad.append(BadLine(number, f"not valid JSON: {exc}"))
        except EventValidationError as exc:
            bad.append(BadLine(number, str(exc)))
    return events, bad


def read_events(lines: Iterable[bytes | str]) -> tuple[list[Event], list[BadLine]]:
    """Parse JSON Lines into events; blank lines are skipped, bad ones reported by number."""
    numbered, bad = read_numbered_events(lines)
    return [event for _, event in numbered], bad


def read_events_file(path: str | Path) -> tuple[list[tuple[int, Event]], list[BadLine]]:
    """`read_numbered_events` of a file, read as bytes so each line is decoded on its own."""
    with Path(path).open("rb") as handle:
        return read_numbered_events(handle)


@dataclass(order=True, slots=True)
class _Wake:
    """A customer to wake at `due`, when one of their timers comes due."""

    due: float
    seq: int
    customer_id: str = field(compare=False)


class Simulator:
    """Feeds events through `advance()` and fires due timers with `fire_due()`, in time order.

    Customers are independent, so one global schedule of wake-ups (one per timer set) keeps
    the output in time order; each wake-up fires whatever that customer has due by then, the
    same way `advance()` fires timers before an event. A wake-up for a timer that was
    cancelled, or already fired, finds nothing due.
    """

    def __init__(self, catalog: Catalog, config: EngineConfig = DEFAULT_CONFIG) -> None:
        self.catalog = catalog
        self.config = config
        self.states: dict[str, CustomerState] = {}
        self._wakes: list[_Wake] = []
        self._seq = 0
        self.firings = 0
        self.truncated = False

    def seed(self, state: CustomerState) -> None:
        """Start a customer from `state` (as an earlier replay left them), their pending
        timers (each instance's wait and expiry) scheduled."""
        self.states[state.customer_id] = state
        for instance in state.instances.values():
            for due in (instance.wake_at, instance.expires_at):
                if due is not None:
                    self._seq += 1
                    heapq.heappush(self._wakes, _Wake(due, self._seq, state.customer_id))

    def run(self, events: Iterable[Event], until: float | None = None) -> Iterator[Action]:
        """Yield every action, in order, for the events sorted by time, then the timers left."""
        for event in sorted(events, key=lambda e: e.occurred_at):
            yield from self._fire_timers(event.occurred_at)
            yield from self.apply(event, event.occurred_at)
        yield from self._fire_timers(until)

    def apply(self, event: Event, now: float) -> list[Action]:
        """Apply one event at `now` (its timers due by then fire first) and schedule wake-ups."""
        state = self.states.get(event.customer_id) or CustomerState(event.customer_id)
        state, actions = advance(state, event, self.catalog, now, self.config)
        self.states[event.customer_id] = state
        self._schedule(actions)
        return actions

    def _schedule(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, TimerSet):
                self._seq += 1
                heapq.heappush(self._wakes, _Wake(action.due, self._seq, action.customer_id))
            elif isinstance(action, TimerFired):
                self.firings += 1

    def _fire_timers(self, until: float | None) -> Iterator[Action]:
        while self._wakes and (until is None or self._wakes[0].due <= until):
            if self.firings >= MAX_TIMER_FIRINGS:
                self.truncated = True
                return
            wake = heapq.heappop(self._wakes)
            state = self.states[wake.customer_id]
            state, actions = fire_due(state, wake.due, self.catalog, self.config)
            self.states[wake.customer_id] = state
            self._schedule(actions)
            yield from actions


def write_records(actions: Iterable[Action], out: TextIO, err: TextIO) -> dict[str, Any]:
    """Print enter/send/suppress/exit as JSON Lines, warnings to `err`; return counts by type."""
    counts: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, _OUTPUT_TYPES):
            record = action.to_record()
            counts[record["type"]] = counts.get(record["type"], 0) + 1
            out.write(jsonwire.dumps_line(record) + "\n")
        elif isinstance(action, LateEvent):
            record = action.to_record()
            err.write(
                f"warning: {record['customer_id']} event {record['event_id']} is late: "
                f"applied at {record['at']}, it occurred at {record['occurred_at']}\n"
            )
        elif isinstance(action, ConditionFailed):
            record = action.to_record()
            err.write(
                f"warning: {record['customer_id']} {record['journey']} step "
                f"{record['step']}: {record['expression']!r} failed: {record['error']}\n"
            )
    return counts
