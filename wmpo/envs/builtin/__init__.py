"""This project's own implementations of the MimicGen D0 tasks, and a small Lift task, on robosuite 1.4.1."""

from __future__ import annotations

BUILTIN_ENVS = {
    "Coffee_D0": "wmpo.envs.builtin.coffee:CoffeeD0",
    "Lift": "wmpo.envs.builtin.lift:BuiltinLift",
    "Square_D0": "wmpo.envs.builtin.square:SquareD0",
    "StackThree_D0": "wmpo.envs.builtin.stack_three:StackThreeD0",
    "ThreePieceAssembly_D0": "wmpo.envs.builtin.three_piece_assembly:ThreePieceAssemblyD0",
}
