import subprocess
import sys

import pytest

from wmpo.envs import BackendError, resolve_backend
from wmpo.envs.factory import mimicgen_available
from wmpo.tasks import get_task


@pytest.mark.skipif(mimicgen_available(), reason="MimicGen is installed here")
def test_mimicgen_backend_without_mimicgen_says_how_to_install():
    with pytest.raises(BackendError) as err:
        resolve_backend(get_task("square"), "mimicgen")
    assert "install.sh --with-mimicgen" in str(err.value)
    assert "backend=builtin" in str(err.value)


@pytest.mark.skipif(mimicgen_available(), reason="MimicGen is installed here")
def test_auto_picks_builtin_without_mimicgen():
    assert resolve_backend(get_task("stack_three"), "auto") == "builtin"


def test_builtin_backend_names_missing_task():
    with pytest.raises(BackendError) as err:
        resolve_backend(get_task("coffee"), "builtin")
    assert "Coffee_D0" in str(err.value) and "Square_D0" in str(err.value)


def test_unknown_backend():
    with pytest.raises(BackendError, match="auto, builtin, mimicgen"):
        resolve_backend(get_task("square"), "isaac")


def test_unusable_renderer_names_the_variable():
    code = (
        "import os; os.environ['MUJOCO_GL'] = 'wgl'\n"
        "from wmpo.envs import make_env, RendererError\n"
        "try:\n    make_env('square', backend='builtin')\n"
        "except RendererError as e:\n    print('RendererError:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "RendererError:" in out.stdout and "MUJOCO_GL" in out.stdout, out.stderr[-2000:]


def test_builtin_only_task_never_goes_to_mimicgen():
    lift = get_task("lift")
    assert resolve_backend(lift, "auto") == "builtin"
    with pytest.raises(BackendError, match="backend=builtin"):
        resolve_backend(lift, "mimicgen")
