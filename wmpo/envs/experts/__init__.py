"""Scripted experts for the built-in tasks (they read privileged object poses)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from wmpo.envs.experts.base import ScriptedExpert
from wmpo.envs.experts.coffee import coffee_expert
from wmpo.envs.experts.lift import lift_expert
from wmpo.envs.experts.square import square_expert
from wmpo.envs.experts.stack_three import stack_three_expert
from wmpo.envs.experts.three_piece_assembly import three_piece_assembly_expert

EXPERTS: dict[str, Callable[[], ScriptedExpert]] = {
    "coffee": coffee_expert,
    "lift": lift_expert,
    "square": square_expert,
    "stack_three": stack_three_expert,
    "three_piece_assembly": three_piece_assembly_expert,
}


def make_expert(task: str, noise: float = 0.0, seed: int | None = None) -> ScriptedExpert:
    """A fresh expert for one episode; ``noise`` is the std of the Gaussian noise on the translation action dims, drawn from
    a generator seeded with ``seed`` (``None``: fresh OS entropy)."""
    if task not in EXPERTS:
        raise KeyError(f"no scripted expert for task {task!r}; experts exist for {', '.join(sorted(EXPERTS))}")
    if noise < 0:
        raise ValueError(f"expert noise must be >= 0, got {noise}")
    expert = EXPERTS[task]()
    expert.noise, expert.rng = noise, np.random.default_rng(seed)
    return expert
