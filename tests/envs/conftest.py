import numpy as np
import pytest


@pytest.fixture(scope="module")
def square_env():
    from wmpo.envs import make_env

    env = make_env("square", backend="builtin")
    yield env
    env.close()


@pytest.fixture(scope="module")
def stack_env():
    from wmpo.envs import make_env

    env = make_env("stack_three", backend="builtin")
    yield env
    env.close()


@pytest.fixture(scope="module")
def lift_env():
    from wmpo.envs import make_env

    env = make_env("lift", backend="builtin")
    yield env
    env.close()


def place(env, obj, pos, quat=(1.0, 0.0, 0.0, 0.0)):
    """Put a free-jointed object at a pose, at rest, and recompute the derived quantities."""
    joint = obj.joints[0]
    env.env.sim.data.set_joint_qpos(joint, np.concatenate([pos, quat]))
    env.env.sim.data.set_joint_qvel(joint, np.zeros(6))
    env.env.sim.forward()


def settle(env, steps=10, gripper=-1.0):
    for _ in range(steps):
        env.step(np.r_[np.zeros(6), gripper], render=False)
