"""Data-parallel dispatch: split a batch into one contiguous shard per worker (results are joined by the caller,
e.g. ``concat_trajectories``)."""

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
    """Shards of anything indexable by a slice along its first dimension (TensorDicts, tensors, arrays).

    Tensor shards are copies: a sliced tensor pickles its whole storage, so a view would ship the full batch to
    every worker (numpy slices and lists pickle only their own items)."""
    shards = [batch[part] for part in even_slices(len(batch), parts)]
    return [s.clone() if hasattr(s, "clone") else s for s in shards]
