"""Which events a backtest replays: a time window of the `events` topic, and which customers."""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass

from orchestrator.errors import OrchestratorError
from orchestrator.timefmt import format_instant, parse_duration, parse_instant

__all__ = ["BacktestInputError", "Selection", "Window", "rank_of", "window_of"]

_HASH_SPACE = 2**32


class BacktestInputError(OrchestratorError):
    """A backtest's arguments are unusable; the message says which and how to fix them."""


@dataclass(frozen=True, slots=True)
class Window:
    """Events that reached the `events` topic at or after `start` and before `end` (epoch s).

    The bounds are the records' broker timestamps (when each event was published), which is
    what `offsets_for_times` finds; the engine then applies each event at its `occurred_at`.
    """

    start: float
    end: float

    def to_json(self) -> dict[str, str]:
        """The window as ISO instants."""
        return {"from": format_instant(self.start), "until": format_instant(self.end)}


def window_of(
    since: str | None, start: str | None, until: str | None, now: float | None = None
) -> Window:
    """`--since DURATION` (ending now) or `--from ISO [--until ISO]` (until defaults to now)."""
    now = time.time() if now is None else now
    try:
        if since is not None:
            if start is not None:
                raise BacktestInputError("give either --since or --from/--until, not both")
            end = parse_instant(until) if until is not None else now
            return _checked(Window(end - parse_duration(since), end))
        if start is None:
            raise BacktestInputError(
                "say which events to replay: --since 7d, or --from ISO --until ISO"
            )
        return _checked(Window(parse_instant(start), parse_instant(until) if until else now))
    except ValueError as exc:
        raise BacktestInputError(f"bad window: {exc}") from exc


def _checked(window: Window) -> Window:
    if window.end <= window.start:
        raise BacktestInputError(
            f"the window ends ({format_instant(window.end)}) before it starts "
            f"({format_instant(window.start)}): put --from before --until"
        )
    return window


@dataclass(frozen=True, slots=True)
class Selection:
    """Which customers to replay: all, the first `customers` by a stable hash of their id, or
    a `sample` fraction of them (by the same hash, so a sample is the same on every run)."""

    customers: int | None = None
    sample: float | None = None

    def __post_init__(self) -> None:
        if self.customers is not None and self.sample is not None:
            raise BacktestInputError("give either --customers or --sample, not both")
        if self.customers is not None and self.customers < 1:
            raise BacktestInputError(f"--customers must be at least 1, not {self.customers}")
        if self.sample is not None and not 0 < self.sample <= 1:
            raise BacktestInputError(
                f"--sample is a fraction of customers in (0, 1], e.g. 0.1, not {self.sample}"
            )

    def admits(self, customer_id: str) -> bool:
        """Whether a customer is in the sample (always, without --sample)."""
        return self.sample is None or rank_of(customer_id) < self.sample * _HASH_SPACE


def rank_of(customer_id: str) -> int:
    """A customer's stable position for sampling: CRC-32 of the id."""
    return zlib.crc32(customer_id.encode())
