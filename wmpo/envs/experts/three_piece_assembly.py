"""Scripted expert for ThreePieceAssembly_D0: piece 1 into the base's hole, then piece 2 onto piece 1."""

from __future__ import annotations

import numpy as np

from wmpo.envs.builtin.three_piece_assembly import BASE_UNIT, PIECE_1_UNIT, PIECE_2_UNIT
from wmpo.envs.experts.base import PickPlace, ScriptedExpert, pick_place_phases, quat_yaw

PIECE_1_HALF = 1.5 * PIECE_1_UNIT
PIECE_2_HALF = 1.5 * PIECE_2_UNIT
CLEARANCE = 0.025
"""Gap kept below a carried piece over whatever it passes above."""
TOWARD_ROBOT = np.array([-1.0, 0.0, 0.0])
"""Piece 2 is held off centre toward the robot: a top-down grasp at the table's far edge is at the arm's reach."""


def _table_z(s) -> float:
    return s["base_pos"][2] - BASE_UNIT / 2


def _insert_piece_1() -> PickPlace:
    seated_z = lambda s: _table_z(s) + PIECE_1_HALF  # noqa: E731 - resting on the table inside the hole
    return PickPlace(
        grasp_point=lambda s: s["piece_1_pos"] + [0, 0, PIECE_1_UNIT],  # the cross on top, above the frame
        object_pos=lambda s: s["piece_1_pos"],
        object_yaw=quat_yaw("piece_1_quat"),
        grasp_yaw_offset=0.0,
        grasp_symmetry=np.pi / 2,
        place_xy=lambda s: s["base_pos"][:2],
        place_yaw=quat_yaw("base_quat"),
        place_symmetry=np.pi / 2,
        carry_z=lambda s: _table_z(s) + BASE_UNIT + PIECE_1_HALF + CLEARANCE,
        place_z=seated_z,
        lift_first=True,
        align_xy=0.0015,  # the two full layers fit the hole with 3 mm to spare on each side
        align_yaw=0.04,
        rest_above=0.006,
        slide_within=0.12,
        slide_if_shallow=True,  # held by the cross alone, a slid piece tilts in the fingers
    )


def _stack_piece_2() -> PickPlace:
    top_of_piece_1 = lambda s: s["piece_1_pos"][2] + PIECE_1_HALF  # noqa: E731
    return PickPlace(
        # the ridge on top, which points at the robot (the pieces start at yaw pi/2); the fingers close across it
        grasp_point=lambda s: s["piece_2_pos"] + [0, 0, 1.1 * PIECE_2_UNIT] + 0.9 * PIECE_2_UNIT * TOWARD_ROBOT,
        object_pos=lambda s: s["piece_2_pos"],
        object_yaw=quat_yaw("piece_2_quat"),
        grasp_yaw_offset=0.0,
        grasp_symmetry=np.pi,
        place_xy=lambda s: s["piece_1_pos"][:2],
        place_yaw=quat_yaw("piece_1_quat"),
        place_symmetry=np.pi / 2,
        carry_z=lambda s: top_of_piece_1(s) + PIECE_2_HALF + CLEARANCE,
        place_z=lambda s: top_of_piece_1(s) + PIECE_2_HALF + 0.002,
        lift_first=True,
        slide_within=0.12,  # clear of the base's frame (half width 0.0475) and of piece 2's own half length
    )


def three_piece_assembly_expert() -> ScriptedExpert:
    insert = _insert_piece_1()

    def piece_1_knocked_out(s):
        return "piece_1/reach" if insert.misplaced(s) else None

    return ScriptedExpert(
        pick_place_phases(insert, "piece_1/") + pick_place_phases(_stack_piece_2(), "piece_2/", undone=piece_1_knocked_out)
    )
