import numpy as np
import pytest


def _builtin_env(task, **kwargs):
    from wmpo.envs import make_env

    env = make_env(task, backend="builtin", **kwargs)
    yield env
    env.close()


@pytest.fixture(scope="module")
def square_env():
    yield from _builtin_env("square")


@pytest.fixture(scope="module")
def stack_env():
    yield from _builtin_env("stack_three")


@pytest.fixture(scope="module")
def lift_env():
    yield from _builtin_env("lift")


@pytest.fixture(scope="module")
def assembly_env():
    yield from _builtin_env("three_piece_assembly", image_size=64)


@pytest.fixture(scope="module")
def coffee_env():
    yield from _builtin_env("coffee", image_size=64)


def place(env, obj, pos, quat=(1.0, 0.0, 0.0, 0.0)):
    """Put a free-jointed object at a pose, at rest, and recompute the derived quantities."""
    joint = obj.joints[0]
    env.env.sim.data.set_joint_qpos(joint, np.concatenate([pos, quat]))
    env.env.sim.data.set_joint_qvel(joint, np.zeros(6))
    env.env.sim.forward()


def settle(env, steps=10, gripper=-1.0):
    for _ in range(steps):
        env.step(np.r_[np.zeros(6), gripper], render=False)
