"""Latency statistics: percentiles and the summary every benchmark result carries.

Pure functions over plain lists of milliseconds (no numpy needed to read them). Percentiles use linear
interpolation between closest ranks (numpy's default, ``method="linear"``): for ``n`` sorted samples the
q-th percentile sits at position ``(n - 1) * q / 100``. That is what most benchmark tools report
(pytest-benchmark, trtexec's percentiles differ slightly: it takes the nearest rank).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

#: The keys of every latency summary, in report order.
SUMMARY_KEYS = ("min", "mean", "p50", "p90", "p99", "max")


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``samples`` by linear interpolation between closest ranks.

    Raises ValueError on an empty sequence or ``q`` outside [0, 100].
    """
    if not samples:
        raise ValueError("percentile of an empty sample list")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile q must be within [0, 100], received {q}")
    ordered = sorted(float(s) for s in samples)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    fraction = position - low
    return ordered[low] + (ordered[high] - ordered[low]) * fraction


def percentiles(samples: Sequence[float], qs: Iterable[float] = (50, 90, 99)) -> dict[str, float]:
    """``{"p50": ..., "p90": ..., "p99": ...}`` for the given percentiles (keys ``p<q>``, q printed as %g)."""
    return {f"p{q:g}": percentile(samples, q) for q in qs}


def latency_summary(samples: Sequence[float], digits: int = 4) -> dict[str, float]:
    """``{min, mean, p50, p90, p99, max}`` of latency samples in ms, rounded to ``digits`` decimals."""
    if not samples:
        raise ValueError("latency summary of an empty sample list")
    values = [float(s) for s in samples]
    summary = {"min": min(values), "mean": math.fsum(values) / len(values), **percentiles(values),
               "max": max(values)}
    return {key: round(summary[key], digits) for key in SUMMARY_KEYS}


def fps_from_ms(latency_ms: float | None) -> float | None:
    """Frames per second for a per-frame latency (None or non-positive latency -> None)."""
    if latency_ms is None or latency_ms <= 0:
        return None
    return 1000.0 / latency_ms


def median(values: Sequence[float]) -> float:
    """The median (the 50th percentile)."""
    return percentile(values, 50)
