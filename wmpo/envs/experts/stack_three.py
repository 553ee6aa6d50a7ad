"""Scripted expert for StackThree_D0: put cube A on cube B, then cube C on cube A."""

from __future__ import annotations

import numpy as np

from wmpo.envs.builtin.stack_three import CUBES
from wmpo.envs.experts.base import PickPlace, ScriptedExpert, pick_place_phases, quat_yaw

HALF = {name[-1].lower(): half for name, half, _, _ in CUBES}
TRANSIT_Z = 0.96  # above a finished three-cube tower (its top is at about 0.91 m)


def _stack(obj: str, base: str) -> PickPlace:
    def top_of_base(s):
        return s[f"cube_{base}_pos"][2] + HALF[base]

    return PickPlace(
        grasp_point=lambda s: s[f"cube_{obj}_pos"],
        object_pos=lambda s: s[f"cube_{obj}_pos"],
        object_yaw=quat_yaw(f"cube_{obj}_quat"),
        grasp_yaw_offset=0.0,
        grasp_symmetry=np.pi / 2,
        place_xy=lambda s: s[f"cube_{base}_pos"][:2],
        place_yaw=quat_yaw(f"cube_{base}_quat"),
        place_symmetry=np.pi / 2,
        carry_z=lambda s: top_of_base(s) + HALF[obj] + 0.03,
        place_z=lambda s: top_of_base(s) + HALF[obj] + 0.002,
        lift_first=True,
        transit_z=TRANSIT_Z,
    )


def stack_three_expert() -> ScriptedExpert:
    a_on_b = _stack("a", "b")

    def a_knocked_off(s):
        return "a_on_b/reach" if a_on_b.misplaced(s) else None

    return ScriptedExpert(
        pick_place_phases(a_on_b, "a_on_b/") + pick_place_phases(_stack("c", "a"), "c_on_a/", undone=a_knocked_off)
    )
