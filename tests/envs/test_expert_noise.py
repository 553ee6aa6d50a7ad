import numpy as np

from wmpo.envs.experts.base import Phase, ScriptedExpert, after_steps
from wmpo.envs.experts.controller import DOWN_ORIENTATION, GRIPPER_OPEN, Goal, rot_z


def _expert(noise: float, seed: int) -> ScriptedExpert:
    goal = Goal(np.array([0.004, -0.003, 1.002]), 0.3, GRIPPER_OPEN)  # close: unsaturated actions
    return ScriptedExpert([Phase("hold", lambda _s: goal, after_steps(10_000))], noise=noise,
                          rng=np.random.default_rng(seed))


def test_noise_moves_only_the_translation_dims():
    # A tilted, turned hand: the clean action has non-zero rotation commands that noise must leave untouched.
    state = {"eef_pos": np.array([0.0, 0.0, 1.0]), "eef_mat": rot_z(-0.2) @ DOWN_ORIENTATION @ rot_z(0.05)}
    clean = _expert(0.0, 0).act(state)
    noisy = np.stack([_expert(0.3, seed).act(state) for seed in range(8)])
    assert np.abs(clean[3:6]).max() > 0.01
    np.testing.assert_array_equal(noisy[:, 3:], np.broadcast_to(clean[3:], (8, 4)))
    assert np.abs(clean[:3]).max() < 0.9 and (np.abs(noisy[:, :3] - clean[:3]) > 0).all()
    assert np.all(np.abs(noisy[:, :3]) <= 1.0)
