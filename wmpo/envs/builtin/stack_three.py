"""Built-in StackThree_D0: robosuite's block stacking with a third cube.

Written from the MimicGen task definition: cube A (red, 0.02 m) on cube B (green, 0.025 m),
then cube C (blue, 0.02 m) on cube A.
"""

from __future__ import annotations

import numpy as np
from robosuite.environments.manipulation.stack import Stack
from robosuite.models.objects import BoxObject
from robosuite.models.tasks import ManipulationTask
from robosuite.utils.placement_samplers import UniformRandomSampler

from wmpo.envs.builtin.scene import FULL_CAMERA, table_arena, wood

CUBES = (
    # name, half size, rgba, texture
    ("cubeA", 0.02, (1, 0, 0, 1), "WoodRed"),
    ("cubeB", 0.025, (0, 1, 0, 1), "WoodGreen"),
    ("cubeC", 0.02, (0, 0, 1, 1), "WoodBlue"),
)
A_MIN_HEIGHT = 0.04
C_MIN_HEIGHT = 0.08


class StackThreeD0(Stack):
    """StackThree_D0: stack A on B, then C on A."""

    def __init__(self, placement_initializer=None, **kwargs):
        if placement_initializer is not None:
            raise TypeError("StackThree_D0 (built-in) samples the D0 cube placements itself; "
                            "it takes no placement_initializer")
        super().__init__(**kwargs)

    def _load_model(self):
        # Stack._load_model builds a two-cube scene; rebuild the task with three cubes on the same table.
        super(Stack, self)._load_model()
        arena = table_arena(self)
        name, pos, quat = FULL_CAMERA
        arena.set_camera(camera_name=name, pos=list(pos), quat=list(quat))
        self.cubeA, self.cubeB, self.cubeC = (
            BoxObject(name=name, size_min=[half] * 3, size_max=[half] * 3, rgba=list(rgba), material=wood(texture))
            for name, half, rgba, texture in CUBES
        )
        cubes = [self.cubeA, self.cubeB, self.cubeC]
        self.placement_initializer = UniformRandomSampler(
            name="ObjectSampler",
            mujoco_objects=cubes,
            x_range=[-0.10, 0.10],
            y_range=[-0.10, 0.10],
            rotation=None,
            ensure_object_boundary_in_range=False,
            ensure_valid_placement=True,
            reference_pos=self.table_offset,
            z_offset=0.01,
        )
        self.model = ManipulationTask(
            mujoco_arena=arena, mujoco_robots=[r.robot_model for r in self.robots], mujoco_objects=cubes
        )

    def _setup_references(self):
        super()._setup_references()
        self.cubeC_body_id = self.sim.model.body_name2id(self.cubeC.root_body)

    def _cube_pos(self, body_id: int) -> np.ndarray:
        return np.array(self.sim.data.body_xpos[body_id])

    def _check_success(self) -> bool:
        gripper = self.robots[0].gripper
        table_z = self.model.mujoco_arena.table_offset[2]
        a_z = self._cube_pos(self.cubeA_body_id)[2] - table_z
        c_z = self._cube_pos(self.cubeC_body_id)[2] - table_z
        return bool(
            a_z > A_MIN_HEIGHT
            and c_z > C_MIN_HEIGHT
            and not self._check_grasp(gripper=gripper, object_geoms=self.cubeA)
            and not self._check_grasp(gripper=gripper, object_geoms=self.cubeC)
            and self.check_contact(self.cubeA, self.cubeB)
            and self.check_contact(self.cubeC, self.cubeA)
        )

    def reward(self, action=None) -> float:
        return float(self._check_success())
