"""CPU thread count for work that shares the cores with simulator processes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def cpu_threads(count: int, enabled: bool = True) -> Iterator[None]:
    """Run the block with ``count`` intra-op threads. Next to busy simulator workers a multi-threaded op waits for
    its slowest thread, which is descheduled: a small policy forward measured 10× slower with 2 threads than with 1
    on 2 cores shared with a simulator."""
    previous = torch.get_num_threads()
    if enabled:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
