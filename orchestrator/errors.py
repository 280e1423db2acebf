"""Typed errors. Every message says what is wrong and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "DependencyRefusedError",
    "DependencyUnavailableError",
    "EventValidationError",
    "JourneyValidationError",
    "OrchestratorError",
    "Problem",
]


class OrchestratorError(Exception):
    """Root of every error Orchestrator raises on purpose.

    `retriable` tells the runtime whether trying the same thing again may succeed.
    """

    retriable: bool = False


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a journey file, located for an editor (1-based line and column)."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class JourneyValidationError(OrchestratorError):
    """A journey (or its templates) is invalid; `problems` lists each issue with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class EventValidationError(OrchestratorError):
    """An event is malformed; the message names the field and the expected shape."""


class ConfigurationError(OrchestratorError):
    """Settings are missing or inconsistent; the message names the environment variable."""


class DependencyUnavailableError(OrchestratorError):
    """Kafka or Redis did not answer; the message names the address tried and the fix.

    Retriable: the same call may succeed once the service is back.
    """

    retriable = True

    def __init__(self, service: str, address: str, fix: str, detail: str = "") -> None:
        self.service = service
        # What the worker's outage handling waits for ("kafka" / "redis").
        self.dependency = service.lower()
        self.address = address
        self.fix = fix
        because = f" ({detail})" if detail else ""
        super().__init__(f"{service} at {address} is not reachable{because}: {fix}")


class DependencyRefusedError(OrchestratorError):
    """Kafka or Redis answered but refused a request; the message says what to check."""
