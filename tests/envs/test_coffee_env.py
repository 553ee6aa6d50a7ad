"""The built-in Coffee_D0: the fixed machine, the open lid, the pod placement and the success rule."""

import numpy as np
import pytest

from wmpo.envs.builtin.coffee import HOLDER_BOTTOM, LID_OPEN, MACHINE_XY, MACHINE_YAW, POD_HALF_HEIGHT, holder_centre_local

pytestmark = pytest.mark.sim


def _pod(env):
    return np.array(env.env.sim.data.body_xpos[env.env.pod_body_id])


def test_machine_is_fixed_and_the_lid_stays_open_through_the_settle_steps(coffee_env):
    for seed in range(4):
        np.random.seed(seed)
        coffee_env.start_episode()
        machine = coffee_env.env.sim.data.body_xpos[coffee_env.env.machine_body_id]
        assert np.allclose(machine[:2], MACHINE_XY, atol=1e-9)
        rotation = coffee_env.env.sim.data.body_xmat[coffee_env.env.machine_body_id].reshape(3, 3)
        assert np.arctan2(rotation[1, 0], rotation[0, 0]) == pytest.approx(MACHINE_YAW, abs=1e-6)
        assert coffee_env.env.lid_angle() == pytest.approx(LID_OPEN, abs=0.02)
        pod = _pod(coffee_env)
        assert -0.13 - 1e-3 <= pod[0] <= -0.07 + 1e-3 and 0.17 - 1e-3 <= pod[1] <= 0.23 + 1e-3
        assert not coffee_env.is_success()


def _set_scene(env, pod_in_holder: bool, lid: float):
    np.random.seed(0)
    env.start_episode()
    sim = env.env.sim
    if pod_in_holder:
        local = holder_centre_local()
        local[2] = HOLDER_BOTTOM + POD_HALF_HEIGHT + 0.002
        origin = sim.data.body_xpos[env.env.machine_body_id]
        rotation = sim.data.body_xmat[env.env.machine_body_id].reshape(3, 3)
        sim.data.set_joint_qpos(env.env.pod.joints[0], np.r_[origin + rotation @ local, 1, 0, 0, 0])
    sim.data.set_joint_qpos(env.env.lid_joint, lid)
    sim.forward()
    for _ in range(10):
        env.env.step(np.zeros(7))


@pytest.mark.parametrize("pod_in_holder, lid, success", [
    (True, 0.0, True),
    (True, LID_OPEN, False),
    (False, 0.0, False),
])
def test_success_needs_the_pod_in_the_holder_and_the_lid_closed(coffee_env, pod_in_holder, lid, success):
    _set_scene(coffee_env, pod_in_holder, lid)
    assert coffee_env.env.pod_in_holder() == pod_in_holder
    assert coffee_env.is_success() == success


def test_placement_initializer_is_rejected():
    from robosuite.utils.placement_samplers import UniformRandomSampler

    from wmpo.envs.builtin.coffee import CoffeeD0

    with pytest.raises(TypeError, match="placement_initializer"):
        CoffeeD0(robots="Panda", placement_initializer=UniformRandomSampler(name="x"))
