"""Task-object poses for the scripted experts, read through the attributes robosuite's base environments define.

Both backends' classes derive from robosuite's Lift, NutAssembly and Stack, so the same reads serve the built-in
tasks and MimicGen's upstream ``*_D0`` environments. Positions are in the world frame; quaternions wxyz, as MuJoCo
stores them.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _body(env, body_id: int, name: str) -> dict[str, np.ndarray]:
    return {f"{name}_pos": np.array(env.sim.data.body_xpos[body_id]),
            f"{name}_quat": np.array(env.sim.data.body_xquat[body_id])}


def lift_poses(env) -> dict[str, np.ndarray]:
    return _body(env, env.cube_body_id, "cube")


def square_poses(env) -> dict[str, np.ndarray]:
    nut = env.nuts[env.nut_to_id["square"]]
    handle_site = env.sim.model.site_name2id(nut.important_sites["handle"])
    return {**_body(env, env.obj_body_id[nut.name], "nut"),
            "handle_pos": np.array(env.sim.data.site_xpos[handle_site]),
            "peg_pos": np.array(env.sim.data.body_xpos[env.peg1_body_id])}


def stack_three_poses(env) -> dict[str, np.ndarray]:
    out = {}
    for key in "abc":
        out.update(_body(env, getattr(env, f"cube{key.upper()}_body_id"), f"cube_{key}"))
    return out


OBJECT_POSES: dict[str, Callable[[object], dict[str, np.ndarray]]] = {
    "Lift": lift_poses,
    "Square_D0": square_poses,
    "StackThree_D0": stack_three_poses,
}
