"""Scripted experts for the built-in tasks (they read privileged object poses)."""

from __future__ import annotations

from typing import Callable

from wmpo.envs.experts.base import ScriptedExpert
from wmpo.envs.experts.square import square_expert
from wmpo.envs.experts.stack_three import stack_three_expert

EXPERTS: dict[str, Callable[[], ScriptedExpert]] = {"square": square_expert, "stack_three": stack_three_expert}


def make_expert(task: str) -> ScriptedExpert:
    if task not in EXPERTS:
        raise KeyError(f"no scripted expert for task {task!r}; experts exist for {', '.join(sorted(EXPERTS))}")
    return EXPERTS[task]()
