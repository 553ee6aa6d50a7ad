"""Scripted expert for Square_D0: grasp the nut by its handle, align it with the square peg, drop it over the peg."""

from __future__ import annotations

import numpy as np

from wmpo.envs.experts.base import PickPlace, ScriptedExpert, pick_place_phases, quat_yaw
from wmpo.envs.experts.controller import wrap_angle_period, yaw_of_quat

NUT_REST_Z = 0.83
CARRY_Z = 1.02  # nut centre height that clears the peg top (0.95 m) while the nut sags in the grasp
# Nut headings that fit the square peg with the handle pointing sideways or toward the robot: with the handle pointing
# away (+x) the grasp point over the peg is at the edge of the arm's workspace.
PLACE_YAWS = (np.pi / 2, np.pi, -np.pi / 2)


def _place_yaw(state) -> float:
    nut_yaw = yaw_of_quat(state["nut_quat"])
    return min(PLACE_YAWS, key=lambda yaw: abs(wrap_angle_period(yaw - nut_yaw, 2 * np.pi)))


def square_expert() -> ScriptedExpert:
    task = PickPlace(
        grasp_point=lambda s: s["handle_pos"],
        object_pos=lambda s: s["nut_pos"],
        object_yaw=quat_yaw("nut_quat"),
        grasp_yaw_offset=np.pi / 2,  # fingers close across the handle
        grasp_symmetry=np.pi,
        place_xy=lambda s: s["peg_pos"][:2],
        place_yaw=_place_yaw,
        place_symmetry=2 * np.pi,
        carry_z=lambda s: CARRY_Z,
        place_z=lambda s: NUT_REST_Z,
    )
    return ScriptedExpert(pick_place_phases(task))
