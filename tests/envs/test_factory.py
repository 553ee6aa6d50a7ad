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
    from dataclasses import replace

    unknown = replace(get_task("coffee"), name="espresso", env_name="Espresso_D0")
    with pytest.raises(BackendError) as err:
        resolve_backend(unknown, "builtin")
    assert "Espresso_D0" in str(err.value) and "Coffee_D0" in str(err.value)


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


def _drop_mimicgen_modules():
    for name in [m for m in sys.modules if m == "mimicgen" or m.startswith("mimicgen.")]:
        del sys.modules[name]


@pytest.fixture
def fake_mimicgen(tmp_path, monkeypatch):
    """Makes an importable ``mimicgen`` package whose environment module runs the given code, as an incomplete
    install would; it is gone again after the test."""

    def make(body: str) -> None:
        package = tmp_path / "mimicgen" / "envs" / "robosuite"
        package.mkdir(parents=True)
        for folder in (tmp_path / "mimicgen", tmp_path / "mimicgen" / "envs"):
            (folder / "__init__.py").write_text("")
        (package / "__init__.py").write_text(body)
        monkeypatch.syspath_prepend(str(tmp_path))
        _drop_mimicgen_modules()

    yield make
    _drop_mimicgen_modules()


@pytest.mark.skipif(mimicgen_available(), reason="MimicGen is installed here")
@pytest.mark.parametrize("body, reason", [("", "did not register Square_D0"),
                                          ("import mimicgen.models\n", "ModuleNotFoundError")])
def test_auto_falls_back_to_builtin_when_mimicgen_lacks_the_task(fake_mimicgen, caplog, body, reason):
    from wmpo.envs.factory import _env_class

    fake_mimicgen(body)
    assert mimicgen_available()
    with caplog.at_level("WARNING", logger="wmpo.envs.factory"):
        assert resolve_backend(get_task("square"), "auto") == "builtin"
    assert reason in caplog.text and "Square_D0" in caplog.text
    with pytest.raises(BackendError, match=reason):
        _env_class(get_task("square"), resolve_backend(get_task("square"), "mimicgen"))


@pytest.mark.skipif(mimicgen_available(), reason="MimicGen is installed here")
def test_install_check_names_every_missing_task_and_the_assets(fake_mimicgen):
    from wmpo.envs.mimicgen_install import install_problems

    assert install_problems() == ["MimicGen is not installed"]
    fake_mimicgen("")
    problems = "\n".join(install_problems())
    for env_name in ("Square_D0", "StackThree_D0", "ThreePieceAssembly_D0", "Coffee_D0"):
        assert f"did not register {env_name}" in problems
    assert "coffee_pod.xml" in problems
