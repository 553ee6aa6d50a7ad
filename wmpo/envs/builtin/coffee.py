"""Built-in Coffee_D0: put the pod into the coffee machine's holder and close the lid.

Written from the MimicGen task facts (machine pose, hinged lid reset to 2π/3, hollow-cylinder pod holder, pod
placement, success rule) on robosuite primitives; the shapes and sizes are this project's own, so frames differ from
the upstream meshes. In the machine's frame (origin on the table top, front toward -x, which the yaw of -π/6 turns
toward the robot and the pod): a base plate, a body column at the back whose top carries the lid's hinge along its
front edge, and in front of it a pedestal with the holder on top. Closed (angle 0), the lid lies flat over the holder;
opened to 2π/3 it leans back over the body and stays there under gravity.
"""

from __future__ import annotations

import numpy as np
from robosuite.models.objects import BoxObject, CompositeBodyObject, CylinderObject
from robosuite.models.objects.composite import HollowCylinderObject
from robosuite.models.tasks import ManipulationTask
from robosuite.utils.mjcf_utils import array_to_string
from robosuite.utils.placement_samplers import UniformRandomSampler

from wmpo.envs.builtin.scene import table_arena
from wmpo.envs.builtin.table_task import TableTask

MACHINE_XY = (0.0, -0.1)
MACHINE_YAW = -np.pi / 6
LID_OPEN = 2 * np.pi / 3
LID_CLOSED_BELOW = np.deg2rad(15.0)
BASE_HALF = (0.075, 0.065, 0.008)
BODY_HALF = (0.03, 0.06, 0.0515)
BODY_X = 0.045
PEDESTAL_HALF = (0.03, 0.03, 0.03)
HOLDER_X = -0.03
HOLDER_OUTER, HOLDER_INNER, HOLDER_HALF_HEIGHT = 0.033, 0.025, 0.02
HOLDER_BOTTOM = 2 * BASE_HALF[2] + 2 * PEDESTAL_HALF[2]
HINGE = np.array([BODY_X - BODY_HALF[0], 0.0, 2 * BASE_HALF[2] + 2 * BODY_HALF[2] + 0.005])
"""The lid's hinge in the machine frame: on the body's front top edge, its axis along y."""
LID_HALF = (0.04, 0.04, 0.005)
POD_RADIUS, POD_HALF_HEIGHT = 0.018, 0.018


def holder_centre_local() -> np.ndarray:
    return np.array([HOLDER_X, 0.0, HOLDER_BOTTOM + HOLDER_HALF_HEIGHT])


class CoffeeMachineObject(CompositeBodyObject):
    """The fixed machine: base, body, pedestal, holder ring and the lid on its hinge (joint ``lid_hinge``)."""

    def __init__(self, name: str):
        grey, dark, metal = (0.55, 0.55, 0.58, 1), (0.15, 0.15, 0.17, 1), (0.75, 0.75, 0.78, 1)
        parts = [
            BoxObject(name="base", size=BASE_HALF, rgba=dark),
            BoxObject(name="body", size=BODY_HALF, rgba=grey),
            BoxObject(name="pedestal", size=PEDESTAL_HALF, rgba=dark),
            HollowCylinderObject(name="holder", outer_radius=HOLDER_OUTER, inner_radius=HOLDER_INNER,
                                 height=HOLDER_HALF_HEIGHT, ngeoms=16, rgba=metal),
            BoxObject(name="lid", size=LID_HALF, rgba=grey),
        ]
        locations = [
            (0.0, 0.0, BASE_HALF[2]),
            (BODY_X, 0.0, 2 * BASE_HALF[2] + BODY_HALF[2]),
            (HOLDER_X, 0.0, 2 * BASE_HALF[2] + PEDESTAL_HALF[2]),
            tuple(holder_centre_local()),
            tuple(HINGE - [LID_HALF[0], 0.0, 0.0]),
        ]
        super().__init__(
            name=name,
            objects=parts,
            object_locations=locations,
            joints=None,
            body_joints={"lid_main": [{
                "name": "lid_hinge", "type": "hinge", "axis": "0 1 0", "pos": array_to_string([LID_HALF[0], 0, 0]),
                "limited": "true", "range": array_to_string([0.0, LID_OPEN]), "damping": "0.005",
            }]},
        )


class CoffeeD0(TableTask):
    """Coffee_D0: the pod into the holder, then the lid closed."""

    def _load_model(self):
        super()._load_model()
        arena = table_arena(self)
        self.machine = CoffeeMachineObject("coffee_machine")
        root = self.machine.get_obj()
        root.set("pos", array_to_string([*MACHINE_XY, self.table_offset[2]]))
        root.set("quat", array_to_string([np.cos(MACHINE_YAW / 2), 0, 0, np.sin(MACHINE_YAW / 2)]))
        self.pod = CylinderObject(name="coffee_pod", size=[POD_RADIUS, POD_HALF_HEIGHT], rgba=(0.8, 0.45, 0.1, 1),
                                  density=500.0, friction=(1.0, 0.005, 0.0001))
        self.placement_initializer = UniformRandomSampler(
            name="PodSampler",
            mujoco_objects=[self.pod],
            x_range=[-0.13, -0.07],
            y_range=[0.17, 0.23],
            rotation=0.0,
            ensure_object_boundary_in_range=False,
            ensure_valid_placement=True,
            reference_pos=self.table_offset,
            z_offset=0.001,
        )
        self.model = ManipulationTask(
            mujoco_arena=arena, mujoco_robots=[r.robot_model for r in self.robots], mujoco_objects=[self.machine, self.pod]
        )

    def _setup_references(self):
        super()._setup_references()
        self.pod_body_id = self.sim.model.body_name2id(self.pod.root_body)
        self.machine_body_id = self.sim.model.body_name2id(self.machine.root_body)
        self.lid_joint = self.machine.naming_prefix + "lid_hinge"

    def _reset_internal(self):
        super()._reset_internal()
        self.sim.data.set_joint_qpos(self.lid_joint, LID_OPEN)
        self.sim.forward()

    def lid_angle(self) -> float:
        return float(self.sim.data.get_joint_qpos(self.lid_joint))

    def to_machine_frame(self, world_pos: np.ndarray) -> np.ndarray:
        origin = self.sim.data.body_xpos[self.machine_body_id]
        rotation = self.sim.data.body_xmat[self.machine_body_id].reshape(3, 3)
        return rotation.T @ (np.asarray(world_pos) - origin)

    def pod_in_holder(self) -> bool:
        pod = self.to_machine_frame(self.sim.data.body_xpos[self.pod_body_id])
        horizontal = np.linalg.norm(pod[:2] - holder_centre_local()[:2])
        return bool(horizontal < HOLDER_INNER - POD_RADIUS + 0.002 and HOLDER_BOTTOM < pod[2] < HINGE[2])

    def _check_success(self) -> bool:
        return bool(self.lid_angle() < LID_CLOSED_BELOW and self.pod_in_holder())
