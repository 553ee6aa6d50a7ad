from pathlib import Path

import pytest
import yaml

from wmpo.tasks import RELEASED_TASKS, TASKS, UnknownTaskError, get_task

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "tasks"


def test_released_constants():
    square = get_task("square")
    assert square.prompt == "insert the square into the stick"
    assert (square.env_name, square.max_steps, square.rm_threshold, square.traj_mini_batch_size) == (
        "Square_D0", 184, 0.96, 23)
    assert square.unnorm_key == "square_d0_300_demos"
    expected = {
        "coffee": ("Coffee_D0", 256, 0.82, 16),
        "stack_three": ("StackThree_D0", 320, 0.66, 20),
        "three_piece_assembly": ("ThreePieceAssembly_D0", 384, 0.62, 16),
    }
    for name, (env_name, max_steps, threshold, slicing) in expected.items():
        spec = get_task(name)
        assert (spec.env_name, spec.max_steps, spec.rm_threshold, spec.traj_mini_batch_size) == (
            env_name, max_steps, threshold, slicing)
        assert spec.prompt == name
    for spec in TASKS.values():
        released = spec.name in RELEASED_TASKS
        assert (spec.action_chunk, spec.action_dim, spec.camera, spec.image_size, spec.settle_steps) == (
            8, 7, "agentview" if released else "workspace", 256 if released else 64, 10)
        assert spec.max_steps % spec.action_chunk == 0
        assert spec.num_chunks % spec.traj_mini_batch_size == 0


def test_builtin_lift_task():
    lift = get_task("lift")
    assert (lift.env_name, lift.prompt, lift.image_size, lift.unnorm_key) == (
        "Lift", "pick up the cube", 64, "lift_scripted_demos")
    assert 64 <= lift.max_steps <= 96
    assert set(TASKS) - set(RELEASED_TASKS) == {"lift"}


def test_lookup_by_env_name():
    assert get_task("StackThree_D0").name == "stack_three"


def test_unknown_task_lists_known_ones():
    with pytest.raises(UnknownTaskError) as err:
        get_task("can")
    message = str(err.value)
    assert "'can'" in message
    for name in TASKS:
        assert name in message


@pytest.mark.parametrize("name", sorted(TASKS))
def test_yaml_agrees_with_registry(name):
    data = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
    assert data == get_task(name).to_dict()
