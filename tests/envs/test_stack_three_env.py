"""The built-in StackThree_D0 has MimicGen's whole-table camera and refuses arguments it would ignore."""

import numpy as np
import pytest

pytestmark = pytest.mark.sim


def test_agentview_full_camera_renders_a_wider_view():
    from wmpo.envs import make_env

    env = make_env("stack_three", backend="builtin", cameras=("agentview", "agentview_full"), image_size=64)
    try:
        env.reset()
        sim = env.env.sim
        camera = sim.model.camera_name2id("agentview_full")
        assert np.allclose(sim.model.cam_pos[camera], [0.753078462147161, 0.0, 1.5194726087166726], atol=1e-6)
        near = sim.render(camera_name="agentview", width=64, height=64)
        full = sim.render(camera_name="agentview_full", width=64, height=64)
        assert np.abs(near.astype(int) - full.astype(int)).mean() > 5
    finally:
        env.close()


def test_placement_initializer_is_rejected():
    from robosuite.utils.placement_samplers import UniformRandomSampler

    from wmpo.envs.builtin.stack_three import StackThreeD0

    with pytest.raises(TypeError, match="placement_initializer"):
        StackThreeD0(robots="Panda", placement_initializer=UniformRandomSampler(name="x"))
