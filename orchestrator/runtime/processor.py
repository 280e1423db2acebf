"""The journey worker's batch core: decode, load, advance, persist, produce, settle.

It does not care where a batch comes from (an aiokafka `getmany`, a faust `stream.take`):
the feed hands it records and commits their offsets once `process` returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from orchestrator import jsonwire
from orchestrator.contracts.base import validate
from orchestrator.contracts.codec import (
    DeadLetter,
    Headers,
    deadletter_key,
    deadletter_value,
    decode_event,
)
from orchestrator.contracts.outbound import OUTBOUND_MESSAGE
from orchestrator.contracts.recording import (
    undelivered_interaction,
)
from orchestrator.engine.advance import advance
from orchestrator.engine.catalog import Catalog
from orchestrator.engine.events import Event
from orchestrator.infra.addresses import address_changes
from orchestrator.infra.batching import RecordBatcher
from orchestrator.runtime.context import WorkerContext
from orchestrator.runtime.effects import BatchStats, Outbox, collect, merge
from orchestrator.runtime.store import StateStore

# `BatchStats` is re-exported: it is what `process` returns.
__all__ = ["BatchProcessor", "BatchStats", "InboundRecord"]

log = logging.getLogger(__name__)

# Customers advanced between two yields to the event loop (~10-30 ms of engine work).
_YIELD_EVERY = 64


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One record of the `events` topic as the feed received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    # Engine events prove their origin in a header (see `runtime/origin.py`).
    headers: Headers = None


class BatchProcessor:
    """Applies batches of `events` records to customer state, effectively once.

    Commit path of one batch, in this order (a crash between any two steps loses nothing and
    sends nothing twice, because redelivered events dedupe on `event_id` and a leftover outbox
    is carried out on the customer's next load):

    1. Decode records; unusable ones become dead letters.
    2. Load every customer's state and leftover outbox (one Redis round trip).
    3. `advance()` each customer's events in partition order; their actions go into the
       customer's outbox (`effects.collect`).
    4. Write each changed customer's state and outbox together, refused if another worker
       wrote that customer since step 2; the outboxes carry the save's fence (one round trip).
    5. Produce outbound messages, interaction records and dead letters; wait for the broker.
    6. Apply outboxes' timer/membership/counter effects, merged across the batch
       (`effects.merge`), and drop the outboxes still carrying the fence (one round trip).
    7. (The feed) commits the batch's offsets.
    """

    def __init__(
        self,
        context: WorkerContext,
        *,
        store: StateStore,
        catalog: Callable[[], Catalog],
        batcher: RecordBatcher | None = None,
    ) -> None:
        """Engine events (`timer.fired`, `journey.archived`) are verified with
        `context.origin`; `catalog` gives the journeys as deployed now. `batcher` (by default
        one over `context.producer`) is how the worker adds topic limits and renewal."""
        self.origin = context.origin
        self.store = store
        self.topics = context.topics
        self.clock = context.clock
        self.timers_key = context.timers_key
        self.catalog = catalog
        # The guards across journeys (global caps): the same config `simulate` applies.
        self.engine_config = context.settings.engine_config()
        self._batcher = batcher or RecordBatcher(context.producer)

    async def process(self, records: Sequence[InboundRecord]) -> BatchStats:
        """Run steps 1-6 for one batch; returns what it did.

        Raises `StaleStateError` (from step 4) when another worker wrote one of these
        customers since step 2: nothing of the batch was produced, and it is abandoned.
        """
        stats = BatchStats()
        # Step 1: decode.
        by_customer: dict[str, list[tuple[InboundRecord, Event]]] = {}
        letters: list[DeadLetter] = []
        for record in records:
            decoded = decode_event(
                record.value,
                record.key,
                record.topic,
                record.partition,
                record.offset,
                headers=record.headers,
                origin=self.origin,
            )
            if isinstance(decoded, DeadLetter):
                letters.append(decoded)
            else:
                by_customer.setdefault(decoded.customer_id, []).append((record, decoded))
        # Step 2: load.
        stored = await self.store.load(list(by_customer)) if by_customer else {}
        # Step 3: advance.
        catalog = self.catalog()
        writes: list[tuple[str, bytes, bytes, int]] = []
        outboxes: list[tuple[str, Outbox, int]] = []  # with the revision the save writes
        for done, (customer_id, items) in enumerate(by_customer.items(), 1):
            if done % _YIELD_EVERY == 0:
                # Let the worker's other tasks run (the timer pump, heartbeats, fetches):
                # a batch of 2,000 events holds the loop for most of a second otherwise,
                # and every timer falling due meanwhile would fire that much later.
                await asyncio.sleep(0)
            entry = stored[customer_id]
            outbox = entry.outbox or Outbox(timers=self.timers_key(items[0][0].partition))
            state, changed = entry.state, entry.outbox is not None
            for record, event in items:
                stats.events += 1
                now = self.clock.now()
                try:
                    applied, actions = advance(state, event, catalog, now, self.engine_config)
                except Exception as exc:  # a bug must not stop the partition: park the event
                    log.exception(
                        "engine failed on %s; sending it to the dead letters", event.event_id
                    )
                    letters.append(
                        DeadLetter(
                            f"engine error: {type(exc).__name__}: {exc}",
                            record.topic,
                            record.partition,
                            record.offset,
                            record.key,
                            record.value,
                        )
                    )
                    continue
                if applied is state:
                    stats.duplicates += 1
                    continue
                state, changed = applied, True
                collect(outbox, event, actions, now, stats)
            if changed:
                # The identity index follows the profile's addresses (once per batch: only
                # where the customer ended up counts).
                outbox.addresses.extend(address_changes(entry.state.profile, state.profile))
                writes.append((customer_id, state.to_stored(), outbox.to_wire(), entry.revision))
                outboxes.append((customer_id, outbox, entry.revision + 1))
        stats.deadletters = len(letters)
        # Step 4: persist state and outbox atomically per customer.
        fence = await self.store.save(writes) if writes else ""
        # Step 5: produce and wait for the broker.
        stats.deadletters += await self._produce(outboxes, letters)
        # Step 6: settle the outboxes' Redis effects, merged across the batch.
        if outboxes:
            await self.store.settle(merge(outboxes), fence)
        return stats

    async def _produce(
        self, outboxes: Sequence[tuple[str, Outbox, int]], letters: Sequence[DeadLetter]
    ) -> int:
        """Produce outbox records and dead letters; returns how many records were refused.

        A record the broker or producer refuses for good (too large, a bad topic) is replaced
        by a bounded dead letter (and, for an outbound message, an `error` interaction record
        so the audit sees the send failed). Failing the batch instead would redeliver it and
        produce its outboxes again on every attempt, and stop every partition in it.
        """
        topic_of = {"interactions": self.topics.interactions, "outbound": self.topics.outbound}
        records: list[tuple[str, bytes | None, bytes]] = []
        origins: list[str | None] = []  # the outbox record's topic kind; None: a dead letter
        for _, outbox, _ in outboxes:
            for kind, key, value in outbox.records:
                records.append((topic_of[kind], key.encode(), value))
                origins.append(kind)
        for letter in letters:
            _log_letter(letter)
            records.append(
                (self.topics.deadletter, deadletter_key(letter), deadletter_value(letter))
            )
            origins.append(None)
        refused = await self._batcher.send_all(records)
        if not refused:
            return 0
        replacements: list[tuple[str, bytes | None, bytes]] = []
        for refusal in refused:
            target, raw_key, raw_value = records[refusal.index]
            origin = origins[refusal.index]
            error = f"{type(refusal.error).__name__}: {refusal.error}"
            if origin is None:
                # Dead letters are bounded far below any limit; this is a broken deadletter
                # topic. Nothing is left to record it in but the log.
                log.error(
                    "could not produce a dead letter to %s (%s): %r", target, error, raw_value[:500]
                )
                continue
            letter = DeadLetter(
                f"could not produce to {target}: {error}; retrying cannot fix this, so it was "
                "not retried: fix the cause (e.g. a template or profile field rendering too "
                "large) and make the journey send again",
                target,
                None,
                None,
                raw_key,
                raw_value,
            )
            _log_letter(letter)
            replacements.append(
                (self.topics.deadletter, deadletter_key(letter), deadletter_value(letter))
            )
            if origin == "outbound":
                message = validate(OUTBOUND_MESSAGE, jsonwire.loads(raw_value), "outbound message")
                record = undelivered_interaction(message, letter.reason, self.clock.now())
                replacements.append((self.topics.interactions, raw_key, record.to_json()))
        # One round, never a loop: what is refused now (only if a topic itself is broken)
        # is logged and dropped.
        for refusal in await self._batcher.send_all(replacements):
            topic, _, value = replacements[refusal.index]
            log.error(
                "could not record a refused record to %s (%s): %r",
                topic,
                refusal.error,
                value[:500],
            )
        return len(refused)


def _log_letter(letter: DeadLetter) -> None:
    log.warning(
        "dead letter at %s[%s]@%s: %s",
        letter.topic,
        letter.partition,
        letter.offset,
        letter.reason[:1000],
    )
