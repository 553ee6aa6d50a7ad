"""Headless OpenGL set-up for MuJoCo offscreen rendering.

MuJoCo picks its OpenGL platform from ``MUJOCO_GL`` when it is first imported, so :func:`configure_gl` must run
before ``mujoco`` or ``robosuite`` are imported. ``egl`` is the default here: it works with Mesa on a CPU machine and
with the NVIDIA driver on a GPU machine; ``osmesa`` is the slower pure-software fallback.
"""

from __future__ import annotations

import os
import sys

from opensora.errors import UserError

SUPPORTED_GL = ("egl", "osmesa", "glfw")
GL_PACKAGES = {"egl": "libegl1 libgl1-mesa-dri", "osmesa": "libosmesa6", "glfw": "a display (DISPLAY) and libglfw3"}


class RendererError(UserError, RuntimeError):
    """No usable offscreen renderer."""


def configure_gl() -> str:
    """Default ``MUJOCO_GL`` (and PyOpenGL's platform) to EGL unless the caller chose one; return the choice."""
    backend = os.environ.setdefault("MUJOCO_GL", "egl").lower()
    if backend not in SUPPORTED_GL:
        raise RendererError(f"MUJOCO_GL={backend!r} is not supported; use one of {', '.join(SUPPORTED_GL)}")
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    if "mujoco" in sys.modules and os.environ.get("PYOPENGL_PLATFORM", backend) != backend:
        raise RendererError(
            f"MUJOCO_GL={backend} but PYOPENGL_PLATFORM={os.environ['PYOPENGL_PLATFORM']}; set both to the same value"
        )
    return backend


def renderer_error(cause: BaseException) -> RendererError:
    """Wrap a failure to create a GL context into an error that says what to set or install."""
    backend = os.environ.get("MUJOCO_GL", "egl")
    others = " or ".join(f"MUJOCO_GL={b} (needs {GL_PACKAGES[b]})" for b in ("egl", "osmesa") if b != backend)
    return RendererError(
        f"offscreen rendering with MUJOCO_GL={backend} failed ({type(cause).__name__}: {cause}). "
        f"Install {GL_PACKAGES.get(backend, 'the OpenGL libraries')} (apt-get install -y {GL_PACKAGES.get(backend, '')}), "
        f"or try {others}. Note: MUJOCO_GL must be set before the first import of mujoco."
    )
