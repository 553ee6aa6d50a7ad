import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.sim

# eglTerminate is wrapped before the first EGL context exists, so robosuite registers the wrapper at exit; it reports
# whether the environment left open by the script still holds its simulator (and so a live render context) by then.
SCRIPT = textwrap.dedent(
    """
    from OpenGL import EGL

    from wmpo.envs import make_env

    opened = []
    terminate = EGL.eglTerminate

    def reporting_terminate(display):
        print("open at eglTerminate:", opened[0].env.sim is not None, flush=True)
        return terminate(display)

    EGL.eglTerminate = reporting_terminate
    opened.append(make_env("lift", backend="builtin"))
    opened[0].reset()
    opened[0].render()
    """
)


def test_an_environment_left_open_is_closed_before_egl_terminates():
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "open at eglTerminate: False" in out.stdout, out.stdout + out.stderr
    assert "EGL_NOT_INITIALIZED" not in out.stderr
