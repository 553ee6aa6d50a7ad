"""Task-object poses for the scripted experts.

Lift, Square_D0 and StackThree_D0 are read through the attributes robosuite's Lift, NutAssembly and Stack define,
which both backends' classes inherit, so the same reads serve the built-in tasks and MimicGen's upstream
environments. ThreePieceAssembly_D0 and Coffee_D0 are read through the built-in classes' own bodies and attributes
(their experts exist for the built-in backend only). Positions are in the world frame; quaternions wxyz, as MuJoCo
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


def three_piece_assembly_poses(env) -> dict[str, np.ndarray]:
    out = {}
    for name, body_id in env.obj_body_id.items():
        out.update(_body(env, body_id, name))
    return out


def coffee_poses(env) -> dict[str, np.ndarray]:
    return {**_body(env, env.pod_body_id, "pod"),
            "machine_pos": np.array(env.sim.data.body_xpos[env.machine_body_id]),
            "machine_mat": np.array(env.sim.data.body_xmat[env.machine_body_id]).reshape(3, 3),
            "lid_angle": np.array(env.lid_angle())}


OBJECT_POSES: dict[str, Callable[[object], dict[str, np.ndarray]]] = {
    "Coffee_D0": coffee_poses,
    "Lift": lift_poses,
    "Square_D0": square_poses,
    "StackThree_D0": stack_three_poses,
    "ThreePieceAssembly_D0": three_piece_assembly_poses,
}
