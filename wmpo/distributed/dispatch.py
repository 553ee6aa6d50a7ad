"""Data-parallel dispatch: split a batch into one contiguous shard per worker and join the workers' results."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def even_slices(count: int, parts: int) -> list[slice]:
    """``parts`` contiguous slices covering ``range(count)`` whose sizes differ by at most one."""
    bounds = np.linspace(0, count, parts + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def split_rows(batch: Sequence[T] | T, parts: int) -> list[T]:
    """Shards of anything indexable by a slice along its first dimension (TensorDicts, tensors, arrays)."""
    return [batch[part] for part in even_slices(len(batch), parts)]
