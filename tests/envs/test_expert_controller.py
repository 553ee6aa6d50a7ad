"""Pure math of the scripted experts' end-effector controller."""

import numpy as np
import pytest

from wmpo.envs.experts.controller import (
    DOWN_ORIENTATION,
    Goal,
    matrix_to_axis_angle,
    nearest_symmetric_yaw,
    rot_z,
    step_action,
    yaw_of_matrix,
    yaw_of_quat,
)


def _axis_angle_to_matrix(v):
    angle = np.linalg.norm(v)
    k = v / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


@pytest.mark.parametrize("v", [[0.1, -0.2, 0.3], [0.0, 0.0, 3.0], [1.2, 0.4, -0.9]])
def test_axis_angle_round_trip(v):
    v = np.asarray(v, dtype=float)
    np.testing.assert_allclose(matrix_to_axis_angle(_axis_angle_to_matrix(v)), v, atol=1e-6)


def test_yaw_helpers():
    assert yaw_of_matrix(rot_z(0.7)) == pytest.approx(0.7)
    assert yaw_of_quat(np.array([np.cos(0.35), 0, 0, np.sin(0.35)])) == pytest.approx(0.7)
    assert nearest_symmetric_yaw(0.1, 3.0, np.pi) == pytest.approx(0.1 + np.pi)
    assert nearest_symmetric_yaw(0.1, 1.5, np.pi / 2) == pytest.approx(0.1 + np.pi / 2)


def test_action_moves_toward_goal_and_settles():
    state = {"eef_pos": np.zeros(3), "eef_mat": rot_z(0.3) @ DOWN_ORIENTATION}
    action = step_action(state, Goal(pos=np.array([0.2, -0.1, 0.0]), yaw=0.0, gripper=1.0))
    assert action.shape == (7,)
    assert action[0] > 0 and action[1] < 0 and np.all(np.abs(action[:6]) <= 1)
    assert action[5] < 0  # turn back toward yaw 0
    assert action[6] == 1.0
    slow = step_action(state, Goal(pos=np.array([0.2, -0.1, 0.0]), yaw=0.0, gripper=1.0, max_speed=0.3))
    np.testing.assert_allclose(slow[:2], [0.3, -0.3])
    at_goal = step_action({"eef_pos": np.ones(3), "eef_mat": DOWN_ORIENTATION}, Goal(np.ones(3), 0.0, -1.0))
    np.testing.assert_allclose(at_goal[:6], 0.0, atol=1e-9)
