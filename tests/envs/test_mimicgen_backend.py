"""The MimicGen backend where MimicGen is installed (skipped otherwise): environments, states, experts, and
agreement with the built-in tasks that reproduce them."""

import numpy as np
import pytest

from wmpo.envs.factory import mimicgen_available, mimicgen_problem
from wmpo.tasks import get_task

pytestmark = [
    pytest.mark.sim,
    pytest.mark.skipif(not mimicgen_available() or mimicgen_problem("Square_D0") is not None,
                       reason="MimicGen is not installed (bash install.sh --with-mimicgen)"),
]
BOTH = ["square", "stack_three"]


@pytest.fixture(scope="module")
def envs():
    from wmpo.envs import make_env

    made = {(task, backend): make_env(task, backend=backend, image_size=64) for task in BOTH
            for backend in ("mimicgen", "builtin")}
    yield made
    for env in made.values():
        env.close()


@pytest.mark.parametrize("task", ["square", "stack_three", "three_piece_assembly", "coffee"])
def test_every_released_task_builds_and_renders(task):
    from wmpo.envs import make_env

    env = make_env(task, backend="mimicgen", image_size=64)
    try:
        env.reset()
        frame = env.render()
        assert frame.shape == (64, 64, 3) and frame.dtype == np.uint8 and frame.std() > 1
        assert env.backend == "mimicgen"
    finally:
        env.close()


@pytest.mark.parametrize("task", BOTH)
def test_same_seed_same_initial_state_and_first_frame(envs, task):
    from wmpo.envs.initial_states import sample_state

    up_state, up_frame = sample_state(envs[task, "mimicgen"], 123)
    own_state, own_frame = sample_state(envs[task, "builtin"], 123)
    np.testing.assert_allclose(up_state["states"], own_state["states"], atol=1e-9)
    assert np.abs(up_frame.astype(int) - own_frame.astype(int)).mean() < 1.0


@pytest.mark.parametrize("task", BOTH)
def test_states_move_between_backends(envs, task):
    up, own = envs[task, "mimicgen"], envs[task, "builtin"]
    up.reset()
    state = up.get_state()
    own.reset_to(state)
    np.testing.assert_allclose(own.get_state()["states"], state["states"], atol=1e-9)
    up.reset_to(own.get_state())
    np.testing.assert_allclose(up.get_state()["states"], state["states"], atol=1e-9)


@pytest.mark.parametrize("task", BOTH)
def test_success_decisions_agree_along_an_expert_episode(envs, task):
    from wmpo.envs.experts import make_expert

    up, own = envs[task, "mimicgen"], envs[task, "builtin"]
    up.reset()
    state = up.get_state()
    up.start_episode(state)
    own.start_episode(state)
    expert = make_expert(task, seed=0)
    for _ in range(get_task(task).max_steps):
        action = expert.act(up.privileged_state())
        a, b = up.step(action, render=False), own.step(action, render=False)
        assert a.success == b.success
        if a.success:
            break
    assert a.success, f"the scripted expert did not solve {task} on the upstream environment"


def test_runner_on_the_mimicgen_backend():
    from wmpo.envs.initial_states import state_seed
    from wmpo.envs.vector import VectorRunner

    runner = VectorRunner("square", backend="mimicgen", num_workers=1, record_frames=True, scripted_expert=True)
    try:
        results = runner.run([state_seed(0, i) for i in range(2)], policy=None, progress=False)
    finally:
        runner.close()
    assert all(r.frames is not None and len(r.frames) == r.finish_step + 1 for r in results)
