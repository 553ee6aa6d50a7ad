"""Timing for the benchmark scripts: every mode is warmed up, then the modes take turns over the repeats, so one-time
costs (allocation, kernel selection, caches) and drifts of the machine do not favour whichever mode runs last."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


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


@contextmanager
def timed_calls(
    targets: list[tuple[object, str, str]], sync: Callable[[], None] | None = None
) -> Iterator[dict[str, list[float]]]:
    """Within the block, every call of ``owner.attr`` for each ``(owner, attr, phase)`` adds its seconds to
    ``phases[phase]`` (one entry per call); the attributes are restored afterwards. ``owner`` may be an instance
    or a class (then a plain method of it is timed for every instance). Phases must not nest: a timed call inside
    another would be counted twice."""
    wait = sync or (lambda: None)
    phases: dict[str, list[float]] = {phase: [] for _, _, phase in targets}
    missing = object()
    saved = []
    try:
        for owner, attr, phase in targets:
            saved.append((owner, attr, vars(owner).get(attr, missing)))
            setattr(owner, attr, _timed(getattr(owner, attr), phases[phase], wait))
        yield phases
    finally:
        for owner, attr, before in reversed(saved):
            if before is missing:
                delattr(owner, attr)
            else:
                setattr(owner, attr, before)


def _timed(function: Callable, seconds: list[float], wait: Callable[[], None]) -> Callable:
    def timed(*args, **kwargs):
        wait()
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            wait()
            seconds.append(time.perf_counter() - start)

    return timed
