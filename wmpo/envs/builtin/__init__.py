"""This project's own implementations of the MimicGen D0 tasks, and a small Lift task, on robosuite 1.4.1."""

from __future__ import annotations

BUILTIN_ENVS = {
    "Lift": "wmpo.envs.builtin.lift:BuiltinLift",
    "Square_D0": "wmpo.envs.builtin.square:SquareD0",
    "StackThree_D0": "wmpo.envs.builtin.stack_three:StackThreeD0",
}
