"""``make_env``: build a task's simulator from the MimicGen package or from this project's built-in tasks."""

from __future__ import annotations

import importlib
import importlib.util
import logging

from opensora.errors import UserError
from wmpo.envs.rendering import configure_gl, renderer_error
from wmpo.envs.robosuite_logging import silence_macro_advice
from wmpo.envs.sim_env import SimEnv
from wmpo.tasks import RELEASED_TASKS, TaskSpec, get_task

log = logging.getLogger(__name__)

BACKENDS = ("auto", "builtin", "mimicgen")
MIMICGEN_INSTALL_HINT = (
    "install NVIDIA's MimicGen from its git repository with `bash install.sh --with-mimicgen` "
    "(the PyPI package named 'mimicgen' is unrelated; never pip-install it), or use backend=builtin"
)


class BackendError(UserError, RuntimeError):
    """The requested simulation backend cannot provide the task."""


def mimicgen_available() -> bool:
    return importlib.util.find_spec("mimicgen") is not None


def mimicgen_problem(env_name: str) -> str | None:
    """Why the installed MimicGen cannot build ``env_name`` (None: it registers it).

    MimicGen's package import swallows errors of its environment modules, so a broken install shows only as a
    task missing from robosuite's registry.
    """
    silence_macro_advice()
    try:
        importlib.import_module("mimicgen.envs.robosuite")
    except Exception as exc:  # any failure inside MimicGen's own imports makes the backend unusable
        return f"importing mimicgen.envs.robosuite failed: {type(exc).__name__}: {exc}"
    from robosuite.environments.base import REGISTERED_ENVS

    if env_name not in REGISTERED_ENVS:
        return f"MimicGen is installed but did not register {env_name} (an incomplete install; reinstall with " \
               f"`bash install.sh --with-mimicgen`)"
    return None


def resolve_backend(task: TaskSpec, backend: str) -> str:
    """Turn ``auto`` into a concrete backend and check that the backend can build ``task``."""
    from wmpo.envs.builtin import BUILTIN_ENVS

    if backend not in BACKENDS:
        raise BackendError(f"unknown simulation backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        # MimicGen provides only the released D0 tasks; this project's own tasks exist only in the built-in backend.
        backend = "mimicgen" if mimicgen_available() and task.name in RELEASED_TASKS else "builtin"
        problem = mimicgen_problem(task.env_name) if backend == "mimicgen" else None
        if problem is not None and task.env_name in BUILTIN_ENVS:
            log.warning("simulation backend: builtin for %s, not mimicgen: %s", task.env_name, problem)
            backend = "builtin"
        else:
            log.info("simulation backend: %s (auto)", backend)
    if backend == "mimicgen" and task.name not in RELEASED_TASKS:
        raise BackendError(f"{task.env_name} ({task.name}) is a built-in task of this project; use backend=builtin or auto")
    if backend == "mimicgen" and not mimicgen_available():
        raise BackendError(f"backend=mimicgen for {task.env_name}, but MimicGen is not installed: {MIMICGEN_INSTALL_HINT}")
    if backend == "builtin" and task.env_name not in BUILTIN_ENVS:
        raise BackendError(
            f"the built-in backend does not implement {task.env_name} (it has {', '.join(sorted(BUILTIN_ENVS))}); "
            f"for {task.name}: {MIMICGEN_INSTALL_HINT.replace(', or use backend=builtin', '')}"
        )
    return backend


def _env_class(task: TaskSpec, backend: str):
    from wmpo.envs.builtin import BUILTIN_ENVS

    if backend == "builtin":
        module, _, name = BUILTIN_ENVS[task.env_name].partition(":")
        return getattr(importlib.import_module(module), name)
    problem = mimicgen_problem(task.env_name)  # the import registers the *_D0 classes with robosuite
    if problem is not None:
        raise BackendError(f"backend=mimicgen for {task.name}: {problem}")
    from robosuite.environments.base import REGISTERED_ENVS

    return REGISTERED_ENVS[task.env_name]


def make_env(
    task: str | TaskSpec,
    backend: str = "auto",
    cameras: tuple[str, ...] | None = None,
    image_size: int | None = None,
) -> SimEnv:
    """Build ``task``'s environment: Panda, OSC_POSE at 20 Hz, offscreen cameras of the task's image size, sparse success.

    ``cameras`` defaults to the task camera (agentview); add ``robot0_eye_in_hand`` for the wrist view. Images come
    from :meth:`SimEnv.render` on demand, so steps that need no frame cost only physics.
    """
    spec = task if isinstance(task, TaskSpec) else get_task(task)
    backend = resolve_backend(spec, backend)
    configure_gl()
    silence_macro_advice()
    from robosuite.controllers import load_controller_config

    env_cls = _env_class(spec, backend)
    size = image_size or spec.image_size
    try:
        env = env_cls(
            robots="Panda",
            controller_configs=load_controller_config(default_controller="OSC_POSE"),
            control_freq=20,
            has_renderer=False,
            has_offscreen_renderer=True,
            use_camera_obs=False,
            use_object_obs=True,
            reward_shaping=False,
            ignore_done=True,
            camera_names=list(cameras or (spec.camera,)),
            camera_heights=size,
            camera_widths=size,
        )
        env.reset()
        sim_env = SimEnv(spec, env, backend, size)
        sim_env.render()
    except Exception as exc:  # a missing GL library surfaces from deep inside mujoco/PyOpenGL
        if _looks_like_gl_failure(exc):
            raise renderer_error(exc) from exc
        raise
    return sim_env


def _looks_like_gl_failure(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return any(word in text for word in ("egl", "osmesa", "opengl", "glfw", "gl context", "libgl"))
