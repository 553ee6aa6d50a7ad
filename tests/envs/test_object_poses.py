"""The experts' object poses read only what robosuite's own task classes define, which MimicGen's environments
inherit: they are read here from robosuite's classes directly and must match the built-in tasks' objects."""

import numpy as np
import pytest

from wmpo.envs.object_poses import OBJECT_POSES

pytestmark = pytest.mark.sim


def _robosuite_env(name: str):
    import robosuite
    from robosuite.controllers import load_controller_config

    from wmpo.envs.rendering import configure_gl

    configure_gl()
    env = robosuite.make(name, robots="Panda", controller_configs=load_controller_config(default_controller="OSC_POSE"),
                         has_renderer=False, has_offscreen_renderer=False, use_camera_obs=False)
    env.reset()
    return env


@pytest.mark.parametrize("robosuite_name, task, keys", [
    ("Lift", "Lift", {"cube_pos", "cube_quat"}),
    ("NutAssemblySquare", "Square_D0", {"nut_pos", "nut_quat", "handle_pos", "peg_pos"}),
])
def test_poses_from_robosuite_base_classes(robosuite_name, task, keys):
    env = _robosuite_env(robosuite_name)
    try:
        poses = OBJECT_POSES[task](env)
    finally:
        env.close()
    assert set(poses) == keys
    assert all(np.isfinite(v).all() for v in poses.values())
    position = poses["cube_pos"] if task == "Lift" else poses["nut_pos"]
    assert 0.8 < position[2] < 0.95  # resting on the table


def test_expert_state_of_every_builtin_task(square_env, stack_env, lift_env):
    for env, names in ((square_env, {"nut_pos", "handle_pos", "peg_pos"}), (stack_env, {"cube_a_pos", "cube_c_pos"}),
                       (lift_env, {"cube_pos"})):
        env.start_episode() if hasattr(env, "start_episode") else env.reset()
        state = env.privileged_state()
        assert names <= set(state) and {"eef_pos", "eef_mat", "gripper_qpos"} <= set(state)
