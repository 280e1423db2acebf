"""Reading the retained events of a window from the `events` topic into a spool.

Each partition is read on its own: from its first retained record (the events published
before the window rebuild profiles and consent, or with `history` the whole of each
customer's retained past) up to the last offset published before the window's end, found
with `offsets_for_times`. Events are keyed by customer, so partitions
hold disjoint customers. Engine-origin records (`timer.fired`, `journey.archived`) and
anything a worker would dead-letter are skipped: the replay recomputes timers itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from orchestrator.backtest.spool import EventSpool
from orchestrator.backtest.window import Selection, Window
from orchestrator.contracts.codec import decode_event
from orchestrator.engine.events import CONSENT_UPDATED, PROFILE_UPDATED, Event
from orchestrator.infra.topics import partitions_of

__all__ = ["Progress", "RetainedRange", "read_window"]

# Events published before the window that change what the engine starts a customer from.
_START_STATE_EVENTS = frozenset({PROFILE_UPDATED, CONSENT_UPDATED})

Progress = Callable[[int, int], None]
"""Told (records read so far, records to read in all) as the read goes on."""


@dataclass(slots=True)
class RetainedRange:
    """What the topic no longer holds: per partition that lost records to retention (its
    first offset is not 0), the broker time of its oldest record left."""

    oldest: dict[int, float] = field(default_factory=dict)
    skipped: int = 0  # engine-origin or undecodable records left out

    def retained_since(self) -> float | None:
        """The latest of those times: every partition is whole after it (None: all whole)."""
        return max(self.oldest.values()) if self.oldest else None


async def read_window(
    bootstrap: str,
    topic: str,
    window: Window,
    selection: Selection,
    spool: EventSpool,
    *,
    progress: Progress | None = None,
    history: bool = False,
) -> RetainedRange:
    """Spool the window's events and the earlier ones that shape start states: profile and
    consent changes, or with `history` every earlier event (to replay the customer's past)."""
    retained = RetainedRange()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in await partitions_of(bootstrap, topic)]
        if not parts:
            return retained
        firsts = await consumer.beginning_offsets(parts)
        ends = await consumer.end_offsets(parts)
        starts = await _offsets_at(consumer, parts, window.start, ends)
        stops = await _offsets_at(consumer, parts, window.end, ends)
        total = sum(stops[tp] - firsts[tp] for tp in parts)
        done = 0
        for tp in parts:
            if stops[tp] <= firsts[tp]:
                continue
            consumer.assign([tp])
            consumer.seek(tp, firsts[tp])
            position = firsts[tp]
            while position < stops[tp]:
                batches = await consumer.getmany(tp, timeout_ms=1000, max_records=2000)
                for message in batches.get(tp, []):
                    if message.offset >= stops[tp]:
                        position = stops[tp]
                        break
                    if message.offset == firsts[tp] > 0:
                        retained.oldest[tp.partition] = message.timestamp / 1000
                    position = message.offset + 1
                    done += 1
                    in_window = message.offset >= starts[tp]
                    _spool(
                        spool, selection, retained, message, in_window=in_window, history=history
                    )
                else:
                    position = max(position, await consumer.position(tp))
                if progress is not None:
                    progress(done, total)
        spool.flush()
        return retained
    finally:
        await consumer.stop()


async def _offsets_at(
    consumer: AIOKafkaConsumer,
    parts: list[TopicPartition],
    instant: float,
    ends: dict[TopicPartition, int],
) -> dict[TopicPartition, int]:
    """Per partition, the first offset published at or after `instant` (its end if none)."""
    found = await consumer.offsets_for_times({tp: int(instant * 1000) for tp in parts})
    return {tp: (found[tp].offset if found.get(tp) is not None else ends[tp]) for tp in parts}


def _spool(
    spool: EventSpool,
    selection: Selection,
    retained: RetainedRange,
    message: ConsumerRecord[bytes, bytes],
    *,
    in_window: bool,
    history: bool,
) -> None:
    key = message.key
    if key is not None and not selection.admits(key.decode(errors="replace")):
        return
    decoded = decode_event(message.value, key, message.topic, message.partition, message.offset)
    if not isinstance(decoded, Event):
        retained.skipped += 1
        return
    if in_window or history or decoded.name in _START_STATE_EVENTS:
        spool.add(decoded, message.partition, message.offset, in_window)
