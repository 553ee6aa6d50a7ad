"""Timing for the benchmark scripts: every mode is warmed up, then the modes take turns over the repeats, so one-time
costs (allocation, kernel selection, caches) and drifts of the machine do not favour whichever mode runs last."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved(
    modes: dict[str, Callable[[], object]], repeats: int = 3, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, list[float]]:
    """Seconds of each call of each mode: ``warmup`` untimed calls per mode, then ``repeats`` rounds that call every
    mode once in turn. ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each clock reading."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    wait = sync or (lambda: None)
    for run in modes.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(repeats):
        for name, run in modes.items():
            wait()
            start = time.perf_counter()
            run()
            wait()
            times[name].append(time.perf_counter() - start)
    return times


def spread(seconds: list[float]) -> str:
    """'median s [min–max]' of some timings."""
    return f"{statistics.median(seconds):8.3f} s [{min(seconds):.3f}–{max(seconds):.3f}]"


def ratio_of_medians(slow: list[float], fast: list[float]) -> float:
    """How many times faster the ``fast`` mode's median is."""
    return statistics.median(slow) / statistics.median(fast)
