"""Pure math of the scripted experts' chunk planner."""

import numpy as np
import pytest

from wmpo.envs.experts.controller import (
    DOWN_ORIENTATION,
    Goal,
    matrix_to_axis_angle,
    nearest_symmetric_yaw,
    plan_chunk,
    rot_z,
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


def test_plan_moves_toward_goal_and_settles():
    state = {"eef_pos": np.zeros(3), "eef_mat": rot_z(0.3) @ DOWN_ORIENTATION}
    chunk = plan_chunk(state, Goal(pos=np.array([0.2, -0.1, 0.0]), yaw=0.0, gripper=1.0))
    assert chunk.shape == (8, 7)
    assert np.all(chunk[:, 0] > 0) and np.all(chunk[:, 1] < 0) and np.all(np.abs(chunk[:, :6]) <= 1)
    assert np.all(chunk[:, 5] < 0)  # turn back toward yaw 0
    np.testing.assert_array_equal(chunk[:, 6], 1.0)
    at_goal = plan_chunk({"eef_pos": np.ones(3), "eef_mat": DOWN_ORIENTATION}, Goal(np.ones(3), 0.0, -1.0))
    np.testing.assert_allclose(at_goal[:, :6], 0.0, atol=1e-9)
