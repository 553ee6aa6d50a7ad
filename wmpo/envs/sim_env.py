"""A robosuite task behind the small interface the rest of the project uses.

Image convention: every frame returned here is upright, as a person sees the scene (row 0 is the top of the image).
robosuite/MuJoCo render with OpenGL's bottom-up row order, so frames are flipped vertically once, right after
rendering; this matches the ``agentview_image`` that robomimic (and therefore the released WMPO data) stores.

State convention: exactly robomimic's ``{"model": <MJCF XML string>, "states": <flattened MuJoCo state>}``.
"""

from __future__ import annotations

import atexit
import functools
import weakref
from dataclasses import dataclass

import numpy as np

from opensora.errors import UserError
from wmpo.envs.object_poses import OBJECT_POSES
from wmpo.tasks import TaskSpec


class StateError(UserError, ValueError):
    """A simulator state that does not fit the environment it is restored into."""


@dataclass
class StepResult:
    """Outcome of one environment step."""

    success: bool
    """The task's success check after this step."""
    frame: np.ndarray | None
    """Upright (H, W, 3) uint8 image of the task camera, or None when rendering was not requested."""


def _close_if_alive(env_ref: weakref.ref) -> None:
    env = env_ref()
    if env is not None:
        env.close()


class SimEnv:
    """One robosuite environment of a task, with robomimic state handling and upright rendering."""

    def __init__(self, task: TaskSpec, env, backend: str, image_size: int):
        self.task = task
        self.env = env
        self.backend = backend
        self.image_size = image_size
        self.zero_action = np.zeros(task.action_dim)
        # Environments whose states all share one model restore a state without rebuilding it from XML.
        self.loaded_xml = env.sim.model.get_xml() if getattr(env, "fixed_model", False) else None
        # robosuite registers eglTerminate at exit when its first EGL context is made; a context still alive then is
        # destroyed on a terminated display, and every such destructor prints an EGL_NOT_INITIALIZED traceback.
        # atexit runs last-registered first, so closing here frees the contexts while the display still exists.
        self._close_at_exit = functools.partial(_close_if_alive, weakref.ref(env))
        atexit.register(self._close_at_exit)

    def render(self, camera: str | None = None) -> np.ndarray:
        """Upright (H, W, 3) uint8 image from ``camera`` (default: the task camera)."""
        image = self.env.sim.render(
            width=self.image_size, height=self.image_size, camera_name=camera or self.task.camera
        )
        return np.ascontiguousarray(image[::-1])

    def get_state(self) -> dict:
        """robomimic-style snapshot: the MJCF XML and the flattened MuJoCo state."""
        return {"model": self.env.sim.model.get_xml(), "states": np.array(self.env.sim.get_state().flatten())}

    def reset(self) -> None:
        """Sample a new initial configuration from the task's distribution (uses NumPy's global RNG)."""
        self.env.reset()

    def reset_to(self, state: dict) -> None:
        """Restore a state written by :meth:`get_state`, rebuilding the model from its XML like robomimic."""
        if not isinstance(state, dict) or "states" not in state:
            raise StateError(f"{self.task.env_name}: a state must be a dict with 'states' (and 'model'); got {type(state)}")
        flat = np.asarray(state["states"], dtype=np.float64)
        if state.get("model") is not None and state["model"] == self.loaded_xml:
            # The same model is loaded: the deterministic reset that follows a rebuild, without the rebuild.
            self.env.deterministic_reset = True
            try:
                self.env.reset()
            finally:
                self.env.deterministic_reset = False
            self.env.sim.reset()
        elif state.get("model") is not None:
            # reset_from_xml_string rebuilds the sim and runs a deterministic reset, so robomimic's preceding random
            # env.reset() would only be overwritten; it is skipped.
            self.env.reset_from_xml_string(self.env.edit_model_xml(state["model"]))
            self.env.sim.reset()
            if self.loaded_xml is not None:
                self.loaded_xml = state["model"]
        expected = self.env.sim.get_state().flatten().shape[0]
        if flat.ndim != 1 or flat.shape[0] != expected:
            raise StateError(
                f"{self.task.env_name} ({self.backend}): state has shape {flat.shape}, this environment's flattened "
                f"MuJoCo state has {expected} entries; the state was written for a different task or backend"
            )
        self.env.sim.set_state_from_flattened(flat)
        self.env.sim.forward()

    def start_episode(self, state: dict | None = None) -> np.ndarray:
        """Restore ``state`` (or sample one), run the task's settle steps, and return frame 0."""
        if state is None:
            self.reset()
        else:
            self.reset_to(state)
        for _ in range(self.task.settle_steps):
            self.env.step(self.zero_action)
        return self.render()

    def step(self, action: np.ndarray, render: bool = True) -> StepResult:
        """Execute one 7-D action; success is the task's sparse success check."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.task.action_dim,):
            raise ValueError(f"{self.task.env_name}: action must have shape ({self.task.action_dim},), got {action.shape}")
        self.env.step(action)
        return StepResult(success=self.is_success(), frame=self.render() if render else None)

    def is_success(self) -> bool:
        return bool(self.env._check_success())

    def privileged_state(self) -> dict[str, np.ndarray]:
        """End-effector pose, gripper opening and the task objects' poses, for scripted experts."""
        robot = self.env.robots[0]
        sim = self.env.sim
        out = {
            "eef_pos": np.array(sim.data.site_xpos[robot.eef_site_id]),
            "eef_mat": np.array(sim.data.site_xmat[robot.eef_site_id]).reshape(3, 3),
            "gripper_qpos": np.array([sim.data.qpos[i] for i in robot._ref_gripper_joint_pos_indexes]),
        }
        poses = OBJECT_POSES.get(self.task.env_name)
        if poses is None:
            raise NotImplementedError(f"{self.task.env_name} ({self.backend}) has no scripted expert's object poses")
        return {**out, **poses(self.env)}

    def close(self) -> None:
        atexit.unregister(self._close_at_exit)
        self.env.close()
