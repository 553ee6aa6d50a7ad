"""Built-in ThreePieceAssembly_D0: put piece 1 into the base's hole, then piece 2 on top of piece 1.

Written from the MimicGen task facts (unit sizes, densities, placements, camera and success tolerances); the voxel
patterns are this project's own. The base is a 5x5 frame of 0.019 m units with a 3x3 hole. Piece 1 (0.017 m units)
is a 3x3x3 block whose top layer is a cross: its two full layers fit the hole with 3 mm to spare on each side and
rest on the table, and the cross stands above the frame, where the fingers hold it. Piece 2 (0.02 m units, 4x3x3)
is a block with a ridge on top to hold it by; resting on piece 1 its centre is 0.0715 m above the base's.
"""

from __future__ import annotations

import numpy as np
from robosuite.models.tasks import ManipulationTask
from robosuite.utils.placement_samplers import SequentialCompositeSampler, UniformRandomSampler

from wmpo.envs.builtin.scene import FULL_CAMERA, table_arena, wood
from wmpo.envs.builtin.table_task import TableTask
from wmpo.envs.builtin.voxels import voxel_object

BASE_UNIT, PIECE_1_UNIT, PIECE_2_UNIT = 0.019, 0.017, 0.02
BASE_LAYERS = (("#####", "#...#", "#...#", "#...#", "#####"),)
PIECE_1_LAYERS = (("###", "###", "###"), ("###", "###", "###"), (".#.", "###", ".#."))
PIECE_2_LAYERS = (("####", "####", "####"), ("####", "####", "####"), (".##.", ".##.", ".##."))
PIECE_YAW = np.pi / 2
SLOT_XY_TOLERANCE = 0.02
PIECE_2_HEIGHT = 0.08
"""Height of piece 2's centre above the base's in the finished assembly, give or take ``SLOT_XY_TOLERANCE``."""


class ThreePieceAssemblyD0(TableTask):
    """ThreePieceAssembly_D0: piece 1 into the base, piece 2 onto piece 1."""

    def _load_model(self):
        super()._load_model()
        arena = table_arena(self)
        _, pos, quat = FULL_CAMERA  # the task's agentview is the whole-table view
        arena.set_camera(camera_name="agentview", pos=list(pos), quat=list(quat))
        self.base = voxel_object("base", BASE_LAYERS, BASE_UNIT, 10000.0, wood("WoodLight"))
        self.piece_1 = voxel_object("piece_1", PIECE_1_LAYERS, PIECE_1_UNIT, 100.0, wood("WoodRed"))
        self.piece_2 = voxel_object("piece_2", PIECE_2_LAYERS, PIECE_2_UNIT, 100.0, wood("WoodBlue"))
        objects = [self.base, self.piece_1, self.piece_2]
        self.placement_initializer = SequentialCompositeSampler(name="ObjectSampler")
        for sampler_name, objs, xy_range, yaw in (("BaseSampler", [self.base], [0.0, 0.0], 0.0),
                                                  ("PieceSampler", [self.piece_1, self.piece_2], [-0.22, 0.22],
                                                   PIECE_YAW)):
            self.placement_initializer.append_sampler(UniformRandomSampler(
                name=sampler_name,
                mujoco_objects=objs,
                x_range=xy_range,
                y_range=xy_range,
                rotation=yaw,
                rotation_axis="z",
                ensure_object_boundary_in_range=False,
                ensure_valid_placement=True,
                reference_pos=self.table_offset,
                z_offset=0.001,
            ))
        self.model = ManipulationTask(
            mujoco_arena=arena, mujoco_robots=[r.robot_model for r in self.robots], mujoco_objects=objects
        )

    def _setup_references(self):
        super()._setup_references()
        self.obj_body_id = {obj.name: self.sim.model.body_name2id(obj.root_body)
                            for obj in (self.base, self.piece_1, self.piece_2)}

    def _pos(self, name: str) -> np.ndarray:
        return np.array(self.sim.data.body_xpos[self.obj_body_id[name]])

    def _check_success(self) -> bool:
        base, piece_1, piece_2 = self._pos("base"), self._pos("piece_1"), self._pos("piece_2")
        gripper = self.robots[0].gripper
        return bool(
            np.linalg.norm(piece_1[:2] - base[:2]) < SLOT_XY_TOLERANCE
            and np.linalg.norm(piece_2[:2] - piece_1[:2]) < SLOT_XY_TOLERANCE
            and abs(piece_2[2] - base[2] - PIECE_2_HEIGHT) < SLOT_XY_TOLERANCE
            and not self._check_grasp(gripper=gripper, object_geoms=self.piece_1)
            and not self._check_grasp(gripper=gripper, object_geoms=self.piece_2)
        )
