"""The built-in ThreePieceAssembly_D0: its placements, camera, success check and state restore."""

import numpy as np
import pytest

from wmpo.envs.builtin.scene import FULL_CAMERA
from wmpo.envs.builtin.three_piece_assembly import BASE_UNIT, PIECE_1_UNIT, PIECE_2_UNIT

pytestmark = pytest.mark.sim


def _poses(env):
    return {name: np.array(env.env.sim.data.body_xpos[env.env.sim.model.body_name2id(f"{name}_root")])
            for name in ("base", "piece_1", "piece_2")}


def _yaw(env, name):
    w, x, y, z = env.env.sim.data.body_xquat[env.env.sim.model.body_name2id(f"{name}_root")]
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def test_agentview_is_the_whole_table_view(assembly_env):
    sim = assembly_env.env.sim
    camera = sim.model.camera_name2id("agentview")
    assert np.allclose(sim.model.cam_pos[camera], FULL_CAMERA[1], atol=1e-6)
    assert np.allclose(sim.model.cam_quat[camera], FULL_CAMERA[2], atol=1e-6)


def test_placements_follow_the_d0_distribution(assembly_env):
    for seed in range(5):
        np.random.seed(seed)
        assembly_env.start_episode()
        poses = _poses(assembly_env)
        assert np.allclose(poses["base"][:2], 0.0, atol=1e-3)
        assert abs(_yaw(assembly_env, "base")) < 0.02
        for piece in ("piece_1", "piece_2"):
            assert np.all(np.abs(poses[piece][:2]) <= 0.22 + 1e-3), (seed, piece, poses[piece])
            assert abs(_yaw(assembly_env, piece) - np.pi / 2) < 0.02
        assert not assembly_env.is_success()


def test_state_layout_is_upstreams(assembly_env):
    """Robot joints, then the free joints of base, piece 1 and piece 2 under upstream's names: 30 positions, so an
    upstream flattened state sets the same bodies."""
    model = assembly_env.env.sim.model
    free = [model.joint_id2name(j) for j in range(model.njnt) if model.jnt_type[j] == 0]
    assert free == ["base_joint0", "piece_1_joint0", "piece_2_joint0"]
    robot = [j for j in range(model.njnt) if model.jnt_type[j] != 0]
    assert max(robot) < model.joint_name2id("base_joint0")
    assert model.nq == 30
    assert [model.jnt_qposadr[model.joint_name2id(name)] for name in free] == [9, 16, 23]


def _place(env, name, pos):
    sim = env.env.sim
    joint = f"{name}_joint0"
    sim.data.set_joint_qpos(joint, np.r_[pos, np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])
    sim.data.set_joint_qvel(joint, np.zeros(6))


def _assemble(env, piece_2_lift=0.0):
    np.random.seed(0)
    env.start_episode()
    table_z = _poses(env)["base"][2] - BASE_UNIT / 2
    _place(env, "piece_1", [0.0, 0.0, table_z + 1.5 * PIECE_1_UNIT + 0.001])
    _place(env, "piece_2", [0.0, 0.0, table_z + 3 * PIECE_1_UNIT + 1.5 * PIECE_2_UNIT + 0.002 + piece_2_lift])
    env.env.sim.forward()
    for _ in range(10):
        env.env.step(np.r_[np.zeros(6), -1.0])


def test_assembled_pieces_succeed(assembly_env):
    _assemble(assembly_env)
    poses = _poses(assembly_env)
    assert np.linalg.norm(poses["piece_1"][:2]) < 0.005  # piece 1 sank into the hole and stands on the table
    assert poses["piece_1"][2] < poses["base"][2] + BASE_UNIT
    assert assembly_env.is_success()


def test_piece_2_far_above_its_slot_fails(assembly_env):
    _assemble(assembly_env)
    assembly_env.env.sim.data.set_joint_qpos("piece_2_joint0", np.r_[0.3, 0.3, 0.83, 1, 0, 0, 0])
    assembly_env.env.sim.forward()
    assert not assembly_env.is_success()


def test_a_saved_state_restores_the_same_poses():
    from wmpo.envs import make_env

    first = make_env("three_piece_assembly", backend="builtin", image_size=64)
    second = make_env("three_piece_assembly", backend="builtin", image_size=64)
    try:
        np.random.seed(3)
        first.reset()
        state = first.get_state()
        frame = first.start_episode(state)
        assert np.array_equal(second.start_episode(state), frame)
        assert all(np.allclose(a, b) for a, b in zip(_poses(first).values(), _poses(second).values()))
    finally:
        first.close()
        second.close()
