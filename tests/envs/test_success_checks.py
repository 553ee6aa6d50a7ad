"""Success checks of the built-in tasks with hand-placed objects."""

import numpy as np
import pytest

from tests.envs.conftest import place, settle

pytestmark = pytest.mark.sim


def test_square_nut_on_peg_succeeds(square_env):
    env = square_env
    np.random.seed(0)
    env.start_episode()
    peg = env.privileged_state()["peg_pos"]
    place(env, env.env.square_nut, np.r_[peg[:2], 0.84])
    settle(env)
    assert env.is_success()
    assert env.privileged_state()["nut_pos"][2] < 0.87


def test_square_nut_on_table_fails(square_env):
    env = square_env
    np.random.seed(1)
    env.start_episode()
    settle(env)
    assert not env.is_success()
    # on the table next to the peg: right height, wrong place
    peg = env.privileged_state()["peg_pos"]
    place(env, env.env.square_nut, np.r_[peg[0] - 0.12, peg[1], 0.83])
    settle(env)
    assert not env.is_success()


def test_square_nut_held_above_peg_fails(square_env):
    env = square_env
    np.random.seed(2)
    env.start_episode()
    peg = env.privileged_state()["peg_pos"]
    place(env, env.env.square_nut, np.r_[peg[:2], 0.97])  # resting on the peg top, not around it
    env.env.sim.forward()
    assert not env.is_success()


def _stack(env, a_on_b=True, c_on_a=True):
    np.random.seed(3)
    env.start_episode()
    b = env.privileged_state()["cube_b_pos"]
    a_pos = np.r_[b[:2], 0.8 + 0.05 + 0.02] if a_on_b else np.r_[b[0] + 0.1, b[1], 0.82]
    place(env, env.env.cubeA, a_pos)
    c_pos = np.r_[a_pos[:2], a_pos[2] + 0.04] if c_on_a else np.r_[b[0], b[1] - 0.1, 0.82]
    place(env, env.env.cubeC, c_pos)
    settle(env, 15)


def test_stack_three_full_tower_succeeds(stack_env):
    _stack(stack_env)
    assert stack_env.is_success()


@pytest.mark.parametrize("a_on_b,c_on_a", [(True, False), (False, True), (False, False)])
def test_stack_three_partial_tower_fails(stack_env, a_on_b, c_on_a):
    _stack(stack_env, a_on_b, c_on_a)
    assert not stack_env.is_success()
