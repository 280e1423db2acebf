"""The run's PNG chart: throughput of each consumer and publish → outbound latency over time."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server

import matplotlib.pyplot as plt
from pipeline import Samples

__all__ = ["draw"]


def _rates(samples: Samples) -> tuple[list[float], list[float]]:
    """(seconds, events/s over the preceding sample period)."""
    times: list[float] = []
    rates: list[float] = []
    for (t0, n0), (t1, n1) in zip(samples.points, samples.points[1:], strict=False):
        if t1 > t0:
            times.append(t1)
            rates.append((n1 - n0) / (t1 - t0))
    return times, rates


def draw(path: Path, series: dict[str, Samples], latencies: list[tuple[float, float]]) -> None:
    """Write the chart to `path`."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    for name, samples in series.items():
        times, rates = _rates(samples)
        top.plot(times, rates, label=name)
    top.set_ylabel("events/s committed")
    top.set_title("throughput (per 0.25 s sample) and publish → outbound latency")
    if series:
        top.legend()
    if latencies:
        bottom.scatter(
            [t for t, _ in latencies], [ms * 1000 for _, ms in latencies], s=2, alpha=0.5
        )
    bottom.axhline(100, color="red", linewidth=0.8, label="p99 target (100 ms)")
    bottom.set_ylabel("latency, ms (at half load)")
    bottom.set_xlabel("seconds since the run started")
    bottom.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
