"""A shard of a topic's partitions, written `I/N`: the partitions p with p % N == I.

The audit sink joins no consumer group (its offsets live in PostgreSQL), so several sinks
split `interactions` between them by a fixed rule instead: shard I of N owns every partition
whose number leaves remainder I when divided by N. Sinks `0/N` to `N-1/N` together own each
partition exactly once, whatever the partition count.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PartitionShard", "checked_shard"]

_FORM = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_HOW = "write it as I/N, the shard's number I (from 0) of N shards, e.g. 0/2 and 1/2 for two sinks"


@dataclass(frozen=True, slots=True)
class PartitionShard:
    """Shard `index` of `count`: owns the partitions p with p % count == index."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> PartitionShard:
        """`I/N` as a shard; `ValueError` saying what to write instead."""
        match = _FORM.match(text)
        if match is None:
            raise ValueError(f"{text!r} is not a shard: {_HOW}")
        index, count = int(match[1]), int(match[2])
        if count < 1:
            raise ValueError(f"{text!r} has no shards (N = 0): {_HOW}")
        if index >= count:
            raise ValueError(
                f"{text!r}: shard numbers run from 0 to {count - 1} for {count} shards: {_HOW}"
            )
        return cls(index, count)

    def owns(self, partition: int) -> bool:
        """Whether `partition` is this shard's."""
        return partition % self.count == self.index

    def of(self, partitions: Iterable[int]) -> list[int]:
        """This shard's partitions among `partitions`, in order."""
        return sorted(p for p in partitions if self.owns(p))

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def checked_shard(text: str) -> str:
    """`text` if it is a shard (`I/N`), else `ValueError` saying what to write."""
    return str(PartitionShard.parse(text))
