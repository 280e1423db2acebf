"""Lua scripts applied to many keys at once: one call per Redis Cluster slot, not per key.

The worker's per-batch steps touch one hash per customer. One script call per customer
costs a command each way (redis-py packs and parses every one in Python) and carries the
script's body each time; one call over a whole batch costs one command and one body. Redis
Cluster only runs a script whose keys share a slot, so there the calls are grouped by slot
(customer keys are hash-tagged per customer: about one call per customer, as before); on a
single node a call takes up to `KEYS_PER_CALL` keys.

Calls are `EVAL` with the body, not `EVALSHA`: once per batch the body costs nothing, and an
`EVALSHA` answered `NOSCRIPT` (after a restart or failover) would need a second call that
runs after the pipeline's later commands, out of the order crash safety relies on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.crc import key_slot

__all__ = ["KEYS_PER_CALL", "QueuedCall", "SlotScript", "call_groups"]

# Bounds how long one call holds Redis (a few milliseconds for a batch's saves).
KEYS_PER_CALL = 500


@dataclass(frozen=True, slots=True)
class QueuedCall:
    """One call queued on a pipeline: where its reply will be, and which keys it covers."""

    position: int  # in the pipeline's results
    indices: list[int]  # of the keys it covers, in the order they were given

    def reply(self, results: Sequence[Any]) -> Any:
        """This call's reply among the executed pipeline's `results`."""
        return results[self.position]


@dataclass(frozen=True, slots=True)
class SlotScript:
    """A Lua script over `KEYS` (all in one slot) and `ARGV`: the arguments every key shares
    first, then each key's own arguments, in the keys' order."""

    body: str

    def queue(
        self,
        pipe: Pipeline | ClusterPipeline,
        keys: Sequence[str],
        shared: Sequence[Any] = (),
        per_key: Sequence[Sequence[Any]] = (),
    ) -> list[QueuedCall]:
        """Queue calls covering `keys` on `pipe`, in order; `per_key[i]`, if given, are key
        i's own arguments."""
        queued: list[QueuedCall] = []
        for indices in call_groups(keys, cluster=isinstance(pipe, ClusterPipeline)):
            args: list[Any] = [*(keys[i] for i in indices), *shared]
            if per_key:
                for i in indices:
                    args.extend(per_key[i])
            queued.append(QueuedCall(len(pipe), indices))
            pipe.eval(self.body, len(indices), *args)
        return queued


def call_groups(keys: Sequence[str], *, cluster: bool) -> list[list[int]]:
    """Indices of `keys` by call: each index once, in order, at most `KEYS_PER_CALL` a call,
    and on a cluster every call's keys in one slot."""
    by_slot: dict[int, list[int]] = {}
    for i, key in enumerate(keys):
        by_slot.setdefault(key_slot(key.encode()) if cluster else 0, []).append(i)
    return [
        group[i : i + KEYS_PER_CALL]
        for group in by_slot.values()
        for i in range(0, len(group), KEYS_PER_CALL)
    ]
