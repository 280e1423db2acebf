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
    Sent,
    Suppressed,
    TimerCancelled,
    TimerSet,
)
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.events import Event, parse_event, timer_event
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
class _Timer:
    due: float
    seq: int
    customer_id: str = field(compare=False)
    journey: str = field(compare=False)
    instance_id: str = field(compare=False)
    timer: str = field(compare=False)


class Simulator:
    """Feeds events and due timers through `advance()` in virtual-time order."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.states: dict[str, CustomerState] = {}
        self._timers: list[_Timer] = []
        self._cancelled: set[tuple[str, str, str]] = set()
        self._seq = 0
        self.firings = 0
        self.truncated = False

    def run(self, events: Iterable[Event], until: float | None = None) -> Iterator[Action]:
        """Yield every action, in order, for the events sorted by time, then the timers left."""
        for event in sorted(events, key=lambda e: e.occurred_at):
            yield from self._fire_timers(event.occurred_at)
            yield from self.apply(event, event.occurred_at)
        yield from self._fire_timers(until)

    def apply(self, event: Event, now: float) -> list[Action]:
        """Apply one event now and register the timers it sets."""
        state = self.states.get(event.customer_id) or CustomerState(event.customer_id)
        state, actions = advance(state, event, self.catalog, now)
        self.states[event.customer_id] = state
        for action in actions:
            if isinstance(action, TimerSet):
                self._seq += 1
                heapq.heappush(
                    self._timers,
                    _Timer(
                        action.due,
                        self._seq,
                        action.customer_id,
                        action.journey,
                        action.instance_id,
                        action.timer,
                    ),
                )
            elif isinstance(action, TimerCancelled):
                self._cancelled.add((action.customer_id, action.instance_id, action.timer))
        return actions

    def _fire_timers(self, until: float | None) -> Iterator[Action]:
        while self._timers and (until is None or self._timers[0].due <= until):
            if self.firings >= MAX_TIMER_FIRINGS:
                self.truncated = True
                return
            timer = heapq.heappop(self._timers)
            key = (timer.customer_id, timer.instance_id, timer.timer)
            if key in self._cancelled:
                self._cancelled.discard(key)
                continue
            self.firings += 1
            event = timer_event(
                timer.customer_id, timer.journey, timer.instance_id, timer.timer, timer.due
            )
            yield from self.apply(event, timer.due)


def write_records(actions: Iterable[Action], out: TextIO, err: TextIO) -> dict[str, Any]:
    """Print enter/send/suppress/exit as JSON Lines, warnings to `err`; return counts by type."""
    counts: dict[str, Any] = {}
    for action in actions:
        if isinstance(action, _OUTPUT_TYPES):
            record = action.to_record()
            counts[record["type"]] = counts.get(record["type"], 0) + 1
            out.write(jsonwire.dumps_line(record) + "\n")
        elif isinstance(action, ConditionFailed):
            record = action.to_record()
            err.write(
                f"warning: {record['customer_id']} {record['journey']} step "
                f"{record['step']}: {record['expression']!r} failed: {record['error']}\n"
            )
    return counts
