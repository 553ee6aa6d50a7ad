"""Learning-rate schedule of the world-model and policy trainers."""

from __future__ import annotations

import math

DECAYS = ("constant", "cosine")


def lr_factor(step: int, warmup: int, total: int, decay: str) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based): linear warmup over ``warmup`` steps,
    then constant, or cosine down to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if decay == "cosine":
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0
