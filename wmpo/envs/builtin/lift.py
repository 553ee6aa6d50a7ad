"""Built-in Lift: robosuite's single-cube lifting task, used as a small task for CPU-scale experiments.

robosuite's placement (±3 cm around the table centre, any heading) and success check (cube centre 4 cm above the
table top) are kept, and so is its cube size range (half size 0.020-0.022 m), but the size is drawn once from a fixed
seed: every state of the task then shares one MuJoCo model, so restoring a state reuses the loaded model instead of
rebuilding it from XML (0.77 s of a 0.85 s episode start), and resets are soft.
"""

from __future__ import annotations

import numpy as np
from robosuite.environments.manipulation.lift import Lift


CUBE_SEED = 0


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

    def privileged_state(self) -> dict[str, np.ndarray]:
        """Cube pose a scripted expert may use (world frame; quaternion wxyz as MuJoCo stores it)."""
        return {
            "cube_pos": np.array(self.sim.data.body_xpos[self.cube_body_id]),
            "cube_quat": np.array(self.sim.data.body_xquat[self.cube_body_id]),
        }
