from dataclasses import dataclass, field

import pytest

from wmpo.cli import parse_config


@dataclass
class Cfg:
    task: str = "square"
    n: int = 3
    arms: list[str] = field(default_factory=lambda: ["a", "b"])


def test_key_value_overrides():
    assert parse_config(Cfg, ["n=7", "task=stack_three"]) == Cfg(task="stack_three", n=7)
    assert parse_config(Cfg, ["arms=[c]"]).arms == ["c"]


def test_help_lists_every_default(capsys):
    with pytest.raises(SystemExit):
        parse_config(Cfg, ["--help"], doc="A tool.")
    assert capsys.readouterr().out.splitlines()[-3:] == ["  task=square", "  n=3", "  arms=['a', 'b']"]


@pytest.mark.parametrize("argv,needle", [(["n=abc"], "n"), (["bogus=1"], "bogus"), (["n"], "key=value")])
def test_bad_arguments_exit_with_message(argv, needle):
    with pytest.raises(SystemExit) as err:
        parse_config(Cfg, argv)
    assert needle in str(err.value)


@pytest.mark.parametrize("args, needle", [
    ([], "policy_path=checkpoint_files/WMPO_models/square/P_128: no such folder"),
    (["policy_path=/nonexistent/policy"], "policy_path=/nonexistent/policy: no such folder"),
    (["/nonexistent/policy", "states=2"], "policy_path=/nonexistent/policy: no such folder"),
])
def test_evaluate_script_names_a_missing_policy_in_one_line(args, needle):
    import subprocess
    from pathlib import Path

    if Path("checkpoint_files/WMPO_models/square/P_128").exists():
        pytest.skip("the released policy is downloaded here")
    run = subprocess.run(["bash", "examples/mimicgen/square/evaluate.sh", *args], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0
    assert needle in run.stderr and "Traceback" not in run.stderr


def test_expected_failures_are_one_line_and_the_debug_variable_brings_the_traceback_back():
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "opensora.train", "--config", "configs/world_model/tiny.yaml", "keep_last=0"]
    quiet = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 2
    assert "error: keep_last=0: must be ≥ 1" in quiet.stderr and "Traceback" not in quiet.stderr
    loud = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "WMPO_DEBUG": "1"})
    assert loud.returncode != 0 and "Traceback" in loud.stderr and "SettingError" in loud.stderr
