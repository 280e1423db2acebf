"""Wall-clock time, optionally fast-forwarded so a demo can live days in minutes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Clock", "ScaledClock"]


class Clock(Protocol):
    """Where the runtime reads "now": swapped for a fixed or shifted one in tests."""

    def now(self) -> float:
        """Current (virtual) epoch seconds."""
        ...


@dataclass(frozen=True, slots=True)
class ScaledClock:
    """`speed` virtual seconds pass per real second, counted from the real instant `origin`.

    Every process of one deployment must share `speed` and `origin` so timers agree.
    """

    speed: float = 1.0
    origin: float = 0.0

    def now(self) -> float:
        """Current (virtual) epoch seconds."""
        real = time.time()
        if self.speed == 1.0:
            return real
        return self.origin + (real - self.origin) * self.speed
