"""Scripted expert for Lift: reach above the cube, descend around it, close the gripper, raise the cube.

The hand keeps its yaw: the open fingers (8 cm apart) close on the 4 cm cube at any heading, and turning the hand to
the cube's faces would demonstrate rotations that a 64 px frame (the cube is a few pixels wide) barely determines.
"""

from __future__ import annotations

import numpy as np

from wmpo.envs.experts.base import Phase, ScriptedExpert, State, after_steps, reached
from wmpo.envs.experts.controller import GRIPPER_CLOSED, GRIPPER_OPEN, Goal, yaw_of_matrix

APPROACH_HEIGHT = 0.05
"""Grip-site height above the cube centre before descending (keeps the open fingers off the cube top)."""
LIFT_HEIGHT = 0.10
"""How far the grip site rises after the grasp; Lift succeeds once the cube centre is 4 cm above the table."""


def _hand_yaw(s: State) -> float:
    return yaw_of_matrix(s["eef_mat"])


def _reach(s: State) -> Goal:
    return Goal(s["cube_pos"] + [0.0, 0.0, APPROACH_HEIGHT], _hand_yaw(s), GRIPPER_OPEN)


def _descend(s: State) -> Goal:
    return Goal(np.array(s["cube_pos"]), _hand_yaw(s), GRIPPER_OPEN, max_speed=0.6)


def _close(s: State) -> Goal:
    return Goal(np.array(s["cube_pos"]), _hand_yaw(s), GRIPPER_CLOSED, max_speed=0.2)


def _lift(s: State) -> Goal:
    return Goal(s["eef_pos"] + [0.0, 0.0, LIFT_HEIGHT], _hand_yaw(s), GRIPPER_CLOSED)


def _if_dropped(s: State) -> str | None:
    # The cube slipped out while lifting (grasp site far from the cube centre): try the grasp again.
    return "reach" if np.linalg.norm(s["cube_pos"] - s["eef_pos"]) > 0.03 else None


def lift_expert() -> ScriptedExpert:
    return ScriptedExpert(
        [
            Phase("reach", _reach, reached(_reach, 0.01, 0.08, max_steps=40)),
            Phase("descend", _descend, reached(_descend, 0.007, 0.1, max_steps=20)),
            Phase("close", _close, after_steps(6)),
            # the lift target moves with the hand, so this phase lasts until the episode ends
            Phase("lift", _lift, after_steps(10_000), _if_dropped),
        ]
    )
