"""Scene pieces shared by the built-in D0 tasks: the table arena, the whole-table camera and wood materials."""

from __future__ import annotations

from robosuite.models.arenas import TableArena
from robosuite.utils.mjcf_utils import CustomMaterial

FULL_CAMERA = ("agentview_full", (0.753078462147161, 2.062036796036723e-08, 1.5194726087166726),
               (0.6432409286499023, 0.293668270111084, 0.2936684489250183, 0.6432408690452576))
"""MimicGen's whole-table camera of its D0 tasks: name, position, quaternion (wxyz)."""


def wood(texture: str) -> CustomMaterial:
    """One of robosuite's wood textures (``WoodRed``, ``WoodBlue``, ...) as a material named after it."""
    name = texture.lower()
    return CustomMaterial(
        texture=texture,
        tex_name=name,
        mat_name=f"{name}_mat",
        tex_attrib={"type": "cube"},
        mat_attrib={"texrepeat": "1 1", "specular": "0.4", "shininess": "0.1"},
    )


def table_arena(env) -> TableArena:
    """robosuite's table arena of ``env``'s size and friction, with the robot's base moved to the table's edge (the
    first steps of every robosuite table task's ``_load_model``)."""
    robot_model = env.robots[0].robot_model
    robot_model.set_base_xpos(robot_model.base_xpos_offset["table"](env.table_full_size[0]))
    arena = TableArena(table_full_size=env.table_full_size, table_friction=env.table_friction,
                       table_offset=env.table_offset)
    arena.set_origin([0, 0, 0])
    return arena
