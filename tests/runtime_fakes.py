"""In-memory stand-ins for the worker's pluggable parts: the clock, the state store and the
producer, so the batch core runs without Kafka or Redis.

The store and the producer write what happens to one shared `journal`, so a test can check
the order of the commit path's steps.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from orchestrator import jsonwire
from orchestrator.engine.state import CustomerState
from orchestrator.runtime.effects import Effects, Outbox
from orchestrator.runtime.store import StaleStateError, StoredCustomer


@dataclasses.dataclass(slots=True)
class FixedClock:
    """A clock that stands at `at` until a test moves it."""

    at: float

    def now(self) -> float:
        """`at`."""
        return self.at


@dataclasses.dataclass(slots=True)
class _Stored:
    state: bytes
    outbox: bytes | None
    revision: int
    fence: str | None = None


class MemoryStore:
    """A `StateStore` in dicts, with Redis's semantics: revision-checked saves, ZADD before
    ZREM, outboxes dropped only while they carry the settling batch's fence and revision."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.customers: dict[str, _Stored] = {}
        self.timers: dict[str, dict[str, float]] = {}
        self.members: dict[str, set[str]] = {}
        self.counters: Counter[tuple[str, str]] = Counter()
        # Runs right after a load: a test plays another worker writing meanwhile.
        self.after_load: Callable[[], None] | None = None
        self.saves = 0

    async def load(self, customer_ids: Sequence[str]) -> dict[str, StoredCustomer]:
        """Each customer as stored (fresh if unknown)."""
        self.journal.append("load")
        loaded: dict[str, StoredCustomer] = {}
        for customer_id in customer_ids:
            stored = self.customers.get(customer_id)
            if stored is None:
                loaded[customer_id] = StoredCustomer(CustomerState(customer_id), None, 0)
                continue
            state = CustomerState.from_stored(stored.state)
            outbox = Outbox.from_wire(stored.outbox) if stored.outbox else None
            loaded[customer_id] = StoredCustomer(state, outbox, stored.revision)
        if self.after_load is not None:
            self.after_load()
        return loaded

    async def save(self, writes: Sequence[tuple[str, bytes, bytes, int]]) -> str:
        """Apply each write whose revision is still current; refuse the others."""
        self.journal.append("save")
        self.saves += 1
        fence = f"save-{self.saves}"
        stale: list[str] = []
        for customer_id, state, outbox, revision in writes:
            current = self.customers.get(customer_id)
            if (current.revision if current else 0) != revision:
                stale.append(customer_id)
                continue
            self.customers[customer_id] = _Stored(state, outbox, revision + 1, fence)
        if stale:
            raise StaleStateError(stale)
        return fence

    async def settle(self, effects: Effects, fence: str) -> None:
        """Apply merged effects like the Redis pipeline does, then drop matching outboxes."""
        self.journal.append("settle")
        for key, added in effects.zadd.items():
            self.timers.setdefault(key, {}).update(added)
        for key, removed in effects.zrem.items():
            for member in removed:
                self.timers.get(key, {}).pop(member, None)
        for journey, customers in effects.joined.items():
            self.members.setdefault(journey, set()).update(customers)
        for journey, customers in effects.left.items():
            self.members.setdefault(journey, set()).difference_update(customers)
        self.counters.update(effects.counters)
        for customer_id, revision in effects.cleared:
            stored = self.customers.get(customer_id)
            if stored is not None and (stored.fence, stored.revision) == (fence, revision):
                stored.outbox = stored.fence = None

    def outbox(self, customer_id: str) -> Outbox | None:
        """The customer's pending outbox, if any."""
        stored = self.customers.get(customer_id)
        return Outbox.from_wire(stored.outbox) if stored and stored.outbox else None

    def state(self, customer_id: str) -> CustomerState:
        """The customer's stored state."""
        return CustomerState.from_stored(self.customers[customer_id].state)


class _Batch:
    """Enough of aiokafka's `BatchBuilder` for `RecordBatcher`: it takes every record."""

    def __init__(self) -> None:
        self.records: list[tuple[bytes | None, bytes]] = []

    def append(self, *, key: bytes | None, value: bytes, timestamp: int | None) -> object:
        self.records.append((key, value))
        return object()  # aiokafka returns metadata, or None when full


class MemoryProducer:
    """A `Producer` that keeps what the broker acknowledged; `failure` fails every send."""

    def __init__(self, journal: list[str], partitions: int = 4) -> None:
        self.journal = journal
        self.partitions = partitions
        self.acknowledged: list[tuple[str, bytes | None, bytes]] = []
        self.failure: BaseException | None = None

    def _future(self, records: list[tuple[str, bytes | None, bytes]]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failure is not None:
            future.set_exception(self.failure)
        else:
            self.acknowledged.extend(records)
            future.set_result(None)
        return future

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """One record, acknowledged at once (or failed)."""
        self.journal.append("produce")
        return self._future([(topic, key, value or b"")])

    def create_batch(self) -> _Batch:
        """An empty batch."""
        return _Batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        """A filled batch, acknowledged at once (or failed)."""
        self.journal.append("produce")
        return self._future([(topic, key, value) for key, value in batch.records])

    async def partitions_for(self, topic: str) -> set[int]:
        """Every topic has `partitions` partitions."""
        return set(range(self.partitions))

    def values(self, topic: str) -> list[Any]:
        """The decoded values acknowledged on `topic`, in order."""
        return [jsonwire.loads(value) for t, _, value in self.acknowledged if t == topic]
