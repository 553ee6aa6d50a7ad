"""Real simulation: task construction (MimicGen or built-in), robomimic-style states, vectorized rollouts."""

from wmpo.envs.factory import BACKENDS, BackendError, make_env, resolve_backend
from wmpo.envs.rendering import RendererError
from wmpo.envs.sim_env import SimEnv, StateError, StepResult

__all__ = ["BACKENDS", "BackendError", "RendererError", "SimEnv", "StateError", "StepResult", "make_env", "resolve_backend"]
