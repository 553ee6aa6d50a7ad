"""Optimizer states off the accelerator between updates: AdamW keeps two fp32 tensors per parameter shard, which
rollouts (world model, VAE and reward model on the same GPU) do not need."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device | str) -> None:
    """Move every state tensor (DTensor shards included) except the step counters, which stay where the optimizer
    keeps them."""
    for state in optimizer.state.values():
        for key, value in state.items():
            if key != "step" and isinstance(value, torch.Tensor):
                state[key] = value.to(device, non_blocking=True)
    if torch.cuda.is_available():
        torch.cuda.synchronize()


@contextmanager
def optimizer_on(optimizer: torch.optim.Optimizer, device: torch.device, offload: bool) -> Iterator[None]:
    """With ``offload``: states on ``device`` inside the block, in CPU memory after it."""
    if offload:
        move_optimizer_state(optimizer, device)
    try:
        yield
    finally:
        if offload:
            move_optimizer_state(optimizer, "cpu")
