"""The built-in Lift task at 64×64: rendering, success check, scripted expert and its seeded noise."""

import numpy as np
import pytest

from tests.envs.conftest import place, settle
from wmpo.envs.builtin.lift import CAMERA, camera_quat
from wmpo.envs.experts import make_expert
from wmpo.envs.initial_states import state_seed
from wmpo.tasks import get_task

pytestmark = pytest.mark.sim
TASK = get_task("lift")


def _start(env, index: int) -> None:
    np.random.seed(state_seed(0, index))
    env.start_episode()


def _run_expert(env, index: int, steps: int, noise: float = 0.0, seed: int | None = None):
    """Actions of the expert from seeded state ``index`` and whether the cube got lifted within ``steps``."""
    _start(env, index)
    expert = make_expert("lift", noise=noise, seed=seed)
    actions = []
    for _ in range(steps):
        actions.append(expert.act(env.privileged_state()))
        if env.step(actions[-1], render=False).success:
            return np.array(actions), True
    return np.array(actions), False


def test_frames_are_64px_and_cube_pose_is_exposed(lift_env):
    _start(lift_env, 0)
    assert lift_env.render().shape == (64, 64, 3) and lift_env.render().dtype == np.uint8
    assert lift_env.step(np.zeros(7)).frame.shape == (64, 64, 3)
    state = lift_env.privileged_state()
    assert state["cube_pos"].shape == (3,) and state["cube_quat"].shape == (4,)
    assert abs(state["cube_pos"][0]) < 0.04 and abs(state["cube_pos"][1]) < 0.04  # robosuite's ±3 cm placement


def _red_rows(frame: np.ndarray) -> np.ndarray:
    red = (frame[..., 0] > 100) & (frame[..., 1] < 60) & (frame[..., 2] < 60)
    return np.nonzero(red.any(axis=1))[0]


def test_camera_quaternion_reproduces_robosuites_agentview_orientation():
    # robosuite's table arena places agentview at 45 degrees with quat 0.653 0.271 0.271 0.653.
    np.testing.assert_allclose(camera_quat(45.0), [0.653, 0.271, 0.271, 0.653], atol=1e-3)


def test_workspace_camera_shows_the_cube_large_and_its_lift(lift_env):
    _start(lift_env, 2)
    settle(lift_env)
    before = _red_rows(lift_env.render())
    assert TASK.camera == CAMERA and len(before) >= 6 > len(_red_rows(lift_env.render("agentview")))
    cube = lift_env.privileged_state()["cube_pos"]
    place(lift_env, lift_env.env.cube, np.r_[cube[:2], cube[2] + 0.04])
    after = _red_rows(lift_env.render())
    assert before.mean() - after.mean() >= 5  # rows are top-down: the raised cube is at least 5 px higher


def test_success_only_when_the_cube_is_raised(lift_env):
    _start(lift_env, 1)
    settle(lift_env)
    assert not lift_env.is_success()
    cube = lift_env.privileged_state()["cube_pos"]
    place(lift_env, lift_env.env.cube, np.r_[cube[:2], cube[2] + 0.06])
    assert lift_env.is_success()


@pytest.mark.parametrize("index", [2, 3])
def test_clean_expert_lifts_the_cube(lift_env, index):
    actions, success = _run_expert(lift_env, index, TASK.max_steps)
    assert success, f"clean expert did not lift the cube from state {index} in {TASK.max_steps} steps"
    assert np.all(np.abs(actions) <= 1.0)


def test_noisy_expert_is_reproducible_and_differs_from_clean(lift_env):
    clean, _ = _run_expert(lift_env, 4, 16)
    noisy, _ = _run_expert(lift_env, 4, 16, noise=0.3, seed=7)
    again, _ = _run_expert(lift_env, 4, 16, noise=0.3, seed=7)
    other, _ = _run_expert(lift_env, 4, 16, noise=0.3, seed=8)
    np.testing.assert_array_equal(noisy, again)
    assert not np.allclose(noisy, clean) and not np.allclose(noisy, other)
    assert np.all(np.abs(noisy) <= 1.0)
    np.testing.assert_array_equal(noisy[:, 6], clean[:, 6])  # the gripper command gets no noise


def test_other_experts_accept_noise():
    assert make_expert("square").noise == 0.0
    assert make_expert("stack_three", noise=0.1, seed=0).noise == 0.1
    with pytest.raises(ValueError, match=">= 0"):
        make_expert("lift", noise=-0.1)


@pytest.mark.slow
def test_runner_demos_are_seeded_per_state_and_repeat():
    from wmpo.envs.vector import VectorRunner

    runner = VectorRunner("lift", backend="builtin", num_workers=2, scripted_expert=True, expert_noise=0.2)
    try:
        first = runner.run([state_seed(0, 5)] * 2, policy=None, state_ids=[5, 5], progress=False)
        again = runner.run([state_seed(0, 5)], policy=None, state_ids=[5], progress=False)[0]
    finally:
        runner.close()
    np.testing.assert_array_equal(again.actions, first[0].actions)  # same runner seed and state id: same demo
    assert not np.array_equal(first[0].actions[:8], first[1].actions[:8])  # the repeated state gets its own noise
    for result in first:
        assert result.frames.shape == (result.finish_step + 1, 64, 64, 3)


@pytest.mark.slow
def test_runner_records_the_steps_after_success_it_is_asked_for():
    from wmpo.envs.vector import VectorRunner
    from wmpo.rollout.collection import episode_record

    results = {}
    for after in (0, 5):
        runner = VectorRunner("lift", backend="builtin", num_workers=1, scripted_expert=True, after_success=after)
        try:
            results[after] = runner.run([state_seed(0, 1)], policy=None, progress=False)[0]
        finally:
            runner.close()
    stopped, recorded = results[0], results[5]
    assert stopped.success and stopped.success_step == stopped.finish_step
    # The same clean expert from the same state: the same first success, then five more steps.
    assert recorded.success and recorded.success_step == stopped.finish_step
    assert recorded.finish_step == stopped.finish_step + 5 <= TASK.max_steps
    assert recorded.frames.shape == (recorded.finish_step + 1, 64, 64, 3) and len(recorded.actions) == recorded.finish_step
    np.testing.assert_array_equal(recorded.actions[: stopped.finish_step], stopped.actions)
    assert episode_record(recorded, "a").meta["success_step"] == stopped.finish_step
    assert "success_step" not in episode_record(stopped, "b").meta


def test_restoring_a_state_without_rebuilding_the_model_matches_the_rebuild(lift_env):
    def states_after(state, rebuild: bool):
        if rebuild:
            lift_env.loaded_xml = "another model"
        lift_env.start_episode(state)
        rng = np.random.default_rng(0)
        for _ in range(20):
            lift_env.step(rng.uniform(-1, 1, 7), render=False)
        return lift_env.env.sim.get_state().flatten(), lift_env.render()

    states = []
    for index in (3, 4):
        _start(lift_env, index)
        states.append(lift_env.get_state())
    assert states[0]["model"] == states[1]["model"] == lift_env.loaded_xml  # one model for every state
    rebuilt = [states_after(s, rebuild=True) for s in states]
    reused = [states_after(s, rebuild=False) for s in states[::-1]][::-1]
    for (flat_a, frame_a), (flat_b, frame_b) in zip(rebuilt, reused):
        assert np.array_equal(flat_a, flat_b) and np.array_equal(frame_a, frame_b)
