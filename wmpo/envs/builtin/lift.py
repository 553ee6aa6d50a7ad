"""Built-in Lift: robosuite's single-cube lifting task, used as a small task for CPU-scale experiments.

robosuite's placement (±3 cm around the table centre, any heading) and success check (cube centre 4 cm above the
table top) are kept, and so is its cube size range (half size 0.020-0.022 m), but the size is drawn once from a fixed
seed: every state of the task then shares one MuJoCo model, so restoring a state reuses the loaded model instead of
rebuilding it from XML (0.77 s of a 0.85 s episode start), and resets are soft.

The task is seen through its own ``workspace`` camera: robosuite's agentview, 0.73 m away at 45 degrees, shows the
cube 3-4 pixels wide at 64x64 and the 4 cm lift that decides success as a shift of about 2 pixels, too little for a
CPU-sized world model and reward model to tell success from failure. The workspace camera looks at the cube from the
front, lower (25 degrees) and closer: the cube is about 8 pixels wide, the lift about 7 pixels, and the fingers show.
"""

from __future__ import annotations

import numpy as np
from robosuite.environments.manipulation.lift import Lift
from robosuite.utils.mjcf_utils import array_to_string, new_element
from robosuite.utils.transform_utils import mat2quat

CUBE_SEED = 0
CAMERA = "workspace"
CAMERA_POS = (0.45, 0.0, 1.05)
"""World position: in front of the table centre (the robot is at negative x), 25 cm above the table top."""
CAMERA_PITCH_DEG = 25.0
"""Downward tilt of the view; the camera faces the robot (-x), image right is +y."""
CAMERA_FOVY_DEG = 40.0


def camera_quat(pitch_deg: float) -> list[float]:
    """MuJoCo (w, x, y, z) of a camera looking along -x, tilted down by ``pitch_deg`` (its -z axis is the view)."""
    pitch = np.deg2rad(pitch_deg)
    # Columns: the camera's x (image right, +y), y (image up) and z (backwards from the view) in world coordinates.
    axes = np.array([[0.0, -np.sin(pitch), np.cos(pitch)], [1.0, 0.0, 0.0], [0.0, np.cos(pitch), np.sin(pitch)]])
    x, y, z, w = mat2quat(axes)
    return [float(w), float(x), float(y), float(z)]


class BuiltinLift(Lift):
    """Lift: grasp the cube and raise it off the table."""

    fixed_model = True
    """Every state shares this environment's model (read by ``SimEnv.reset_to``)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("hard_reset", False)
        super().__init__(**kwargs)

    def _load_model(self):
        outer = np.random.get_state()
        np.random.seed(CUBE_SEED)
        try:
            super()._load_model()
        finally:
            np.random.set_state(outer)
        self.model.worldbody.append(new_element(
            "camera", name=CAMERA, mode="fixed", pos=array_to_string(CAMERA_POS),
            quat=array_to_string(camera_quat(CAMERA_PITCH_DEG)), fovy=str(CAMERA_FOVY_DEG)))
