"""Closed-loop end-effector control for scripted experts with robosuite's OSC_POSE controller.

OSC_POSE (delta mode) maps an action in [-1, 1] to a position offset of up to 0.05 m and an axis-angle rotation of up
to 0.5 rad, both in the world frame, relative to the current end-effector pose. Measured with the default gains, the
arm covers about 25% of a commanded position offset and 19% of a commanded rotation per 50 ms step. An expert acts
every step with a proportional command that asks for a fixed fraction of the remaining error, so the arm's lag and
coasting never build up into overshoot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POS_SCALE = 0.05
ROT_SCALE = 0.5
POS_TRACKING = 0.25
ROT_TRACKING = 0.19
POS_GAIN = 0.4
ROT_GAIN = 0.3
GRIPPER_OPEN = -1.0
GRIPPER_CLOSED = 1.0
# Closing direction of the Panda fingers is the end-effector site's local x axis. With yaw 0 the fingers close along
# world x and the gripper points straight down.
DOWN_ORIENTATION = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def yaw_of_matrix(mat: np.ndarray) -> float:
    """Heading of a rotation matrix's x axis in the world xy plane."""
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def yaw_of_quat(quat_wxyz: np.ndarray) -> float:
    w, x, y, z = quat_wxyz
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


def nearest_symmetric_yaw(target: float, current: float, period: float) -> float:
    """The angle ``target + k * period`` closest to ``current`` (objects and the gripper are symmetric)."""
    return current + wrap_angle_period(target - current, period)


def wrap_angle_period(angle: float, period: float) -> float:
    return float((angle + period / 2.0) % period - period / 2.0)


def matrix_to_axis_angle(mat: np.ndarray) -> np.ndarray:
    cos_angle = np.clip((np.trace(mat) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos_angle)
    if angle < 1e-8:
        return np.zeros(3)
    axis = np.array([mat[2, 1] - mat[1, 2], mat[0, 2] - mat[2, 0], mat[1, 0] - mat[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-8:  # angle close to pi: take the axis from the symmetric part
        axis = np.sqrt(np.clip((np.diag(mat) + 1.0) / 2.0, 0.0, None))
        norm = np.linalg.norm(axis)
    return axis / norm * angle


@dataclass
class Goal:
    """Where the end effector should go."""

    pos: np.ndarray
    """Target grip-site position (world, metres)."""
    yaw: float
    """Target heading of the finger closing axis (radians); the gripper points straight down."""
    gripper: float
    """Gripper command (-1 open, +1 closed)."""
    max_speed: float = 1.0
    """Largest position action magnitude per axis, as a fraction of the controller's 0.05 m range."""


def step_action(state: dict[str, np.ndarray], goal: Goal) -> np.ndarray:
    """One 7-D action moving the end effector (``eef_pos``, ``eef_mat`` in ``state``) toward ``goal``."""
    pos_err = goal.pos - np.asarray(state["eef_pos"], dtype=np.float64)
    rot_err = matrix_to_axis_angle(rot_z(goal.yaw) @ DOWN_ORIENTATION @ np.asarray(state["eef_mat"]).T)
    move = np.clip(POS_GAIN * pos_err / (POS_SCALE * POS_TRACKING), -goal.max_speed, goal.max_speed)
    turn = np.clip(ROT_GAIN * rot_err / (ROT_SCALE * ROT_TRACKING), -1.0, 1.0)
    return np.r_[move, turn, goal.gripper]
