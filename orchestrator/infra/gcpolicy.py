"""How the batch processes (journey worker, audit sink) run Python's garbage collector.

A batch allocates tens of thousands of objects that form no reference cycles and live until
it commits; at the default threshold (700 allocations) the collector walks them, promotes
them and walks them again many times per batch, and each full collection also walks every
object made at start-up (modules, the journey catalog, compiled templates): about 15% of the
audit sink's CPU (`bench/audit.py`), and pauses of tens of milliseconds in the journey
worker that showed as a saw-tooth in publish -> outbound latency (bench/RESULTS.md).
"""

from __future__ import annotations

import gc

__all__ = ["collect_garbage_less_often"]

# Allocations between two young-generation collections (Python's default: 700).
_GC_THRESHOLD = 50_000


def collect_garbage_less_often() -> None:
    """Freeze what exists now out of every future collection and collect the young
    generation every 50,000 allocations (call once a process has started, in its process)."""
    gc.freeze()
    gc.set_threshold(_GC_THRESHOLD, 50, 100)
