"""Riding out Kafka, Redis and PostgreSQL outages: which errors to retry, backoff, and state.

A worker never dies of a dependency being away for a while. Whatever talks to Kafka or Redis
(the batch core, the timer pump, the catalog follower, start-up) retries retriable errors
with capped exponential backoff through `ride_out`, and reports to one `Health`, which
knows the worker's state for `/health` and logs one summary line per outage state change and
at most one every `SUMMARY_EVERY` seconds while it lasts, never one per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from aiokafka.errors import KafkaError, KafkaTimeoutError
from redis.exceptions import ClusterDownError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from orchestrator.errors import DependencyUnavailableError, OrchestratorError

__all__ = [
    "SUMMARY_EVERY",
    "Backoff",
    "Dependency",
    "Health",
    "StoppedWhileWaitingError",
    "dependency_of",
    "load_at_start",
    "ride_out",
]

log = logging.getLogger(__name__)

Dependency = Literal["kafka", "redis", "postgres"]
State = Literal[
    "starting",
    "healthy",
    "waiting_for_kafka",
    "waiting_for_redis",
    "waiting_for_postgres",
    "stopping",
]
T = TypeVar("T")

SUMMARY_EVERY = 10.0
_NAMES: dict[Dependency, str] = {"kafka": "Kafka", "redis": "Redis", "postgres": "PostgreSQL"}
_SETTING: dict[Dependency, str] = {
    "kafka": "ORCHESTRATOR_KAFKA_BOOTSTRAP",
    "redis": "ORCHESTRATOR_REDIS_URL",
    "postgres": "ORCHESTRATOR_DATABASE_URL",
}


def dependency_of(error: BaseException) -> Dependency | None:
    """The dependency a retriable error blames, or None when trying again cannot help.

    A retriable `OrchestratorError` names its dependency in a `dependency` attribute, Kafka
    if it has none (the produce path). `StaleStateError` is not retriable: this worker's
    partitions moved, so its batch is abandoned, not retried.
    """
    if isinstance(
        error, RedisConnectionError | RedisTimeoutError | ClusterDownError | TryAgainError
    ):
        return "redis"
    # aiokafka does not mark KafkaTimeoutError retriable, but it is what a produce raises
    # when the broker does not answer within the request timeout.
    if isinstance(error, KafkaError) and (error.retriable or isinstance(error, KafkaTimeoutError)):
        return "kafka"
    if isinstance(error, OrchestratorError) and error.retriable:
        dependency: Dependency = getattr(error, "dependency", "kafka")
        return dependency
    return None


def _describe(error: BaseException) -> str:
    text = str(error) or repr(error)
    name = type(error).__name__
    # aiokafka's errors already start with their class name.
    return text if text.startswith(name) else f"{name}: {text}"


class StoppedWhileWaitingError(OrchestratorError):
    """The worker was asked to stop while it waited for a dependency; nothing was committed."""


class Backoff:
    """Capped exponential backoff with full jitter: `first`, doubling, never above `cap`."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first = first
        self.cap = cap
        self._ceiling = first

    def next(self) -> float:
        """The next delay; each call doubles the ceiling up to `cap`."""
        # Jitter keeps several workers from hammering a recovering server in step.
        delay = random.uniform(self._ceiling / 2, self._ceiling)  # noqa: S311 - not crypto
        self._ceiling = min(self._ceiling * 2, self.cap)
        return delay


@dataclass(slots=True)
class _Outage:
    started: float
    attempts: int
    last_error: str
    last_report: float


class Health:
    """The worker's state, for `/health` and the outage summary lines.

    Components call `failed(dependency, error)` on each failed attempt and `recovered` on
    a success; the state is `waiting_for_kafka` or `waiting_for_redis` while either has an
    open outage (Kafka first if both), else `starting`, `healthy` or `stopping`.
    """

    def __init__(self, addresses: Mapping[Dependency, str]) -> None:
        self.addresses = dict(addresses)
        self._phase: State = "starting"
        self._outages: dict[Dependency, _Outage] = {}
        self.state: State = "starting"
        self.since = time.time()
        self.retries = 0

    def failed(self, dependency: Dependency, error: BaseException) -> None:
        """Count a failed attempt; log when an outage begins and every `SUMMARY_EVERY` s."""
        now = time.monotonic()
        text = _describe(error)
        outage = self._outages.get(dependency)
        if outage is None:
            self._outages[dependency] = _Outage(now, 1, text, now)
            log.warning(
                "waiting for %s at %s (retrying with backoff): %s",
                _NAMES[dependency],
                self.addresses[dependency],
                text,
            )
            self._update()
            return
        outage.attempts += 1
        outage.last_error = text
        if now - outage.last_report >= SUMMARY_EVERY:
            outage.last_report = now
            log.warning(
                "still waiting for %s at %s for %.0f s, %d attempts; last error: %s",
                _NAMES[dependency],
                self.addresses[dependency],
                now - outage.started,
                outage.attempts,
                text,
            )

    def recovered(self, dependency: Dependency) -> None:
        """End an outage of `dependency`, if there is one."""
        outage = self._outages.pop(dependency, None)
        if outage is None:
            return
        log.warning(
            "%s at %s is back after %.0f s (%d failed attempts)",
            _NAMES[dependency],
            self.addresses[dependency],
            time.monotonic() - outage.started,
            outage.attempts,
        )
        self._update()

    def waited(self, dependency: Dependency) -> tuple[float, str] | None:
        """(seconds, last error) of the open outage of `dependency`, if any."""
        outage = self._outages.get(dependency)
        if outage is None:
            return None
        return time.monotonic() - outage.started, outage.last_error

    def set_phase(self, phase: Literal["starting", "healthy", "stopping"]) -> None:
        """Move through the worker's life: starting, then healthy, then stopping."""
        self._phase = phase
        self._update()

    def _update(self) -> None:
        state: State = self._phase
        if self._phase != "stopping":
            if "kafka" in self._outages:
                state = "waiting_for_kafka"
            elif "redis" in self._outages:
                state = "waiting_for_redis"
            elif "postgres" in self._outages:
                state = "waiting_for_postgres"
        if state != self.state:
            self.state = state
            self.since = time.time()

    def snapshot(self) -> dict[str, Any]:
        """The state as JSON-ready data, with the open outages' figures."""
        now = time.monotonic()
        return {
            "state": self.state,
            "since": datetime.fromtimestamp(self.since, UTC).isoformat(),
            "batch_retries": self.retries,
            "waiting_for": {
                dependency: {
                    "address": self.addresses[dependency],
                    "seconds": round(now - outage.started, 1),
                    "attempts": outage.attempts,
                    "last_error": outage.last_error,
                }
                for dependency, outage in self._outages.items()
            },
        }


async def _stopped_within(stopping: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` (a backoff delay, cut short by a stop); True if stopping."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


async def _unless_stopped(
    attempt: Awaitable[T], stopping: asyncio.Event, grace: float, what: str
) -> T:
    """Await `attempt`; once stopping, give it `grace` seconds more, then cancel it.

    A produce to a broker that is away waits for the whole request timeout (40 s); a stop
    must not. Cancelling an attempt is as safe as a crash: nothing of it was committed.
    """
    task = asyncio.ensure_future(attempt)
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()
            # A client that swallows the cancellation must not hold the stop up either.
            await asyncio.wait({task}, timeout=1.0)
            raise StoppedWhileWaitingError(f"stopped during {what}; it was abandoned uncommitted")
        return task.result()
    finally:
        stop.cancel()


async def ride_out(
    attempt: Callable[[], Awaitable[T]],
    *,
    health: Health,
    stopping: asyncio.Event,
    what: str,
    grace: float = 5.0,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run `attempt()` until it succeeds, retrying retriable errors with backoff.

    Errors `dependency_of` cannot blame are raised at once. Raises
    `StoppedWhileWaitingError` when `stopping` is set while an attempt is in flight (after
    `grace` seconds) or during a backoff delay.
    """
    backoff = Backoff()
    failing: set[Dependency] = set()
    while True:
        try:
            result = await _unless_stopped(attempt(), stopping, grace, what)
        except StoppedWhileWaitingError:
            raise
        except Exception as exc:
            dependency = dependency_of(exc)
            if dependency is None:
                raise
            failing.add(dependency)
            health.failed(dependency, exc)
            if on_retry is not None:
                on_retry()
            if await _stopped_within(stopping, backoff.next()):
                raise StoppedWhileWaitingError(
                    f"stopped while retrying {what} ({type(exc).__name__}: {exc}); "
                    "nothing of it was committed"
                ) from exc
            continue
        for dependency in failing:
            health.recovered(dependency)
        return result


def _worth_waiting_at_start(error: BaseException) -> bool:
    # At start-up nothing is half done, so any network-ish failure is worth another try;
    # a bad setting shows up as the same error every time and ends with the timeout's message.
    return dependency_of(error) is not None or isinstance(
        error, KafkaError | OSError | TimeoutError
    )


async def wait_until_up(
    step: Callable[[], Awaitable[object]],
    *,
    dependency: Dependency,
    health: Health,
    deadline: float,
    stopping: asyncio.Event,
) -> None:
    """Run a start-up `step` until it succeeds, backing off, until the loop time `deadline`.

    Raises `DependencyUnavailableError` (one line, says what to do) at the deadline and
    `StoppedWhileWaitingError` if the worker is stopped meanwhile.
    """
    loop = asyncio.get_running_loop()
    backoff = Backoff(0.2, 5.0)
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            waited, error = health.waited(dependency) or (0.0, "no attempt made")
            raise DependencyUnavailableError(
                _NAMES[dependency],
                health.addresses[dependency],
                f"start it or fix {_SETTING[dependency]} "
                "(ORCHESTRATOR_STARTUP_TIMEOUT_S sets how long to wait)",
                f"tried for {waited:.0f} s; last error: {error.rstrip('.')}",
            )
        try:
            await _unless_stopped(
                asyncio.wait_for(step(), remaining), stopping, 0.0, f"connecting to {dependency}"
            )
        except StoppedWhileWaitingError:
            raise
        except Exception as exc:
            if not _worth_waiting_at_start(exc):
                raise
            # An attempt cut short by the deadline says less than the error before it.
            if not (isinstance(exc, TimeoutError) and health.waited(dependency)):
                health.failed(dependency, exc)
            if await _stopped_within(stopping, min(backoff.next(), max(remaining, 0.0))):
                raise StoppedWhileWaitingError(
                    f"stopped while waiting for {_NAMES[dependency]} to start"
                ) from None
            continue
        health.recovered(dependency)
        return


class QuietRepeats(logging.Filter):
    """Lets one record per (logger, message template) through every `every` seconds.

    aiokafka and faust log every failed connection attempt (hundreds of lines a second
    while a broker is away); the outage summary lines say what matters. A record let
    through after a quiet spell says how many like it were held back.
    """

    def __init__(self, prefixes: tuple[str, ...], every: float = SUMMARY_EVERY) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.every = every
        self._last: dict[tuple[str, object], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a repeat within `every` seconds of the last one let through."""
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.msg)
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = (
                f"{record.msg} ({last[1]} more like this in the last {now - last[0]:.0f} s)"
            )
        self._last[key] = (now, 0)
        return True


async def load_at_start(
    loads: Sequence[Callable[[], Awaitable[object]]],
    *,
    dependency: Dependency,
    health: Health,
    within_s: float,
    stopping: asyncio.Event,
) -> None:
    """Run start-up `loads` (e.g. shared keys read from Redis) one after another, each waited
    for as `wait_until_up` does, all within `within_s` seconds (ORCHESTRATOR_STARTUP_TIMEOUT_S)."""
    deadline = asyncio.get_running_loop().time() + within_s
    for load in loads:
        await wait_until_up(
            load, dependency=dependency, health=health, deadline=deadline, stopping=stopping
        )
