"""Timing for the benchmark scripts: every mode is warmed up, then the modes take turns over the repeats, so one-time
costs (allocation, kernel selection, caches) and drifts of the machine do not favour whichever mode runs last."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

DENSE_BF16_PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0}
"""Dense (no sparsity) bf16 tensor-core peaks of the SXM parts, by a name fragment of ``torch.cuda.get_device_name``."""


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


def flops_of(function: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``function``, counted per operator by PyTorch's FLOP counter (matrix
    products and attention; elementwise work is not counted, as MFU conventionally leaves it out)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function()
    return int(counter.get_total_flops())


def dense_bf16_peak_tflops(device: torch.device) -> float | None:
    """The device's dense bf16 peak in TFLOP/s, or None when it is not a GPU listed in ``DENSE_BF16_PEAK_TFLOPS``."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for part, peak in DENSE_BF16_PEAK_TFLOPS.items() if part in name), None)


def throughput(flops: int, seconds: float, peak_tflops: float | None) -> str:
    """'X TFLOP/s, MFU Y%' (MFU 'n/a' without a known peak)."""
    achieved = flops / seconds / 1e12
    mfu = f"{100 * achieved / peak_tflops:.1f}%" if peak_tflops else "n/a"
    return f"{achieved:8.3f} TFLOP/s  MFU {mfu}"
