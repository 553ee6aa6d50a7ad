"""Scripted expert for Coffee_D0: drop the pod into the holder, push the open lid over, press it shut."""

from __future__ import annotations

import numpy as np

from wmpo.envs.builtin.coffee import (
    HINGE,
    HOLDER_BOTTOM,
    HOLDER_HALF_HEIGHT,
    LID_HALF,
    POD_HALF_HEIGHT,
    holder_centre_local,
)
from wmpo.envs.experts.base import (
    Phase,
    PickPlace,
    ScriptedExpert,
    after_steps,
    pick_place_phases,
    quat_yaw,
    reached,
)
from wmpo.envs.experts.controller import GRIPPER_CLOSED, Goal, yaw_of_matrix

PUSH_HEIGHT = HINGE[2] + 0.06
"""Where the hand meets the open lid's back face (machine frame), below the lid's far edge."""


def _world(s, local) -> np.ndarray:
    return s["machine_pos"] + s["machine_mat"] @ np.asarray(local, dtype=np.float64)


def _drop_pod() -> PickPlace:
    holder_top = HOLDER_BOTTOM + 2 * HOLDER_HALF_HEIGHT
    return PickPlace(
        grasp_point=lambda s: s["pod_pos"] + [0, 0, 0.5 * POD_HALF_HEIGHT],
        object_pos=lambda s: s["pod_pos"],
        object_yaw=quat_yaw("pod_quat"),
        grasp_yaw_offset=0.0,
        grasp_symmetry=np.pi / 2,  # a cylinder: any heading holds it
        place_xy=lambda s: _world(s, holder_centre_local())[:2],
        place_yaw=quat_yaw("pod_quat"),
        place_symmetry=2 * np.pi,
        carry_z=lambda s: _world(s, [0, 0, holder_top + POD_HALF_HEIGHT + 0.03])[2],
        place_z=lambda s: _world(s, [0, 0, HOLDER_BOTTOM + POD_HALF_HEIGHT])[2],
        drop_height=2 * HOLDER_HALF_HEIGHT + 0.006,
        align_xy=0.002,  # the pod has 7 mm to spare in the holder
        lift_first=True,
    )


def _lid_phases() -> list[Phase]:
    def hand_at(local, max_speed=1.0):
        return lambda s: Goal(_world(s, local), yaw_of_matrix(s["machine_mat"]), GRIPPER_CLOSED, max_speed=max_speed)

    behind = [HINGE[0] + 0.085, 0.0, PUSH_HEIGHT]
    over_lid = [HINGE[0] - LID_HALF[0], 0.0, HINGE[2] + 0.03]
    on_lid = [HINGE[0] - LID_HALF[0], 0.0, HINGE[2] + LID_HALF[2]]
    above_behind = [behind[0], 0.0, behind[2] + 0.06]
    pushed = [HINGE[0] - 0.04, 0.0, PUSH_HEIGHT]
    return [
        Phase("lid/above", hand_at(above_behind), reached(hand_at(above_behind), 0.01, 0.1, max_steps=60)),
        Phase("lid/behind", hand_at(behind), reached(hand_at(behind), 0.008, 0.1, max_steps=40)),
        Phase("lid/push", hand_at(pushed, 0.5), lambda s, steps: bool(s["lid_angle"] < 1.2 or steps >= 80)),
        Phase("lid/over", hand_at(over_lid), reached(hand_at(over_lid), 0.01, 0.1, max_steps=40)),
        Phase("lid/press", hand_at(on_lid, 0.4), lambda s, steps: bool(s["lid_angle"] < 0.05 or steps >= 30)),
        Phase("lid/release", hand_at(over_lid), after_steps(10)),
    ]


def coffee_expert() -> ScriptedExpert:
    return ScriptedExpert(pick_place_phases(_drop_pod(), "pod/") + _lid_phases())
