import logging
import subprocess
import sys

import pytest

from opensora.training.settings import SettingError
from wmpo.trainer_config import load_trainer_config
from wmpo.trainer_settings import check_trainer_settings


def quickstart(**overrides):
    return load_trainer_config("configs/quickstart.yaml", [f"{k}={v}" for k, v in overrides.items()])


@pytest.mark.parametrize("key, value, message", [
    ("save_freq", 0, "save_freq=0: must be ≥ 1"),
    ("keep_last", 0, "keep_last=0: must be ≥ 1"),
    ("keep_last", -2, "keep_last=-2: must be ≥ 1"),
    ("temperature", 0.0, "temperature=0.0: must be > 0"),
    ("lr", -1e-4, "lr=-0.0001: must be ≥ 0"),
    ("n_samples", 0, "n_samples=0: must be ≥ 1"),
    ("train_batch_size", 0, "train_batch_size=0"),
    ("test_freq", -1, "test_freq=-1"),
    ("accuracy_upper_bound", 0.05, "accuracy_upper_bound=0.05"),
    ("imagination.rm_threshold", 1.5, "imagination.rm_threshold=1.5: must be in (0, 1]"),
    ("imagination.rm_threshold", 0.0, "imagination.rm_threshold=0.0: must be in (0, 1]"),
    ("imagination.image_size", 60, "imagination.image_size=60"),
    ("imagination.slots", -1, "imagination.slots=-1: must be ≥ 0"),
    ("imagination.world_model.compile", "fast", "imagination.world_model.compile='fast': must be off or default"),
    ("evaluation.backend", "mujoco", "evaluation.backend='mujoco'"),
    ("update.ppo_mini_batch_size", 0, "update.ppo_mini_batch_size=0"),
    ("algorithm", "ppo", "algorithm='ppo': must be grpo or dpo"),
    ("algorithm", "dpo", "dpo.shards=[]: must be at least one shard path"),
    ("dpo.beta", 0.0, "dpo.beta=0.0: must be > 0"),
    ("coevolve.every", -1, "coevolve.every=-1: must be ≥ 0"),
    ("coevolve.trajectories", 0, "coevolve.trajectories=0: must be ≥ 1"),
    ("coevolve.wm_steps", 0, "coevolve.wm_steps=0: must be ≥ 1"),
])
def test_out_of_range_settings_are_named_before_any_work(key, value, message):
    with pytest.raises(SettingError) as caught:
        check_trainer_settings(quickstart(**{key: value}))
    assert message in str(caught.value)


@pytest.mark.parametrize("key", ["resume", "imagination.reward_model_path", "evaluation.initial_states"])
def test_missing_paths_are_named(key, tmp_path):
    missing = tmp_path / "nonexistent"
    with pytest.raises(SettingError, match=f"{key}={missing}"):
        check_trainer_settings(quickstart(**{key: missing}))


def test_coevolution_needs_imagination_and_the_world_models_training_run(tmp_path):
    with pytest.raises(SettingError, match="coevolve.every=2: must be 0 unless the run imagines"):
        check_trainer_settings(quickstart(**{"coevolve.every": 2, "imagination.enable": False}))
    with pytest.raises(SettingError, match=f"coevolve.world_model_run={tmp_path}: not a world-model training run"):
        check_trainer_settings(quickstart(**{"coevolve.every": 2, "coevolve.world_model_run": tmp_path}))


def test_policy_folder_without_config_is_named(tmp_path):
    with pytest.raises(SettingError, match="no config.json"):
        check_trainer_settings(quickstart(policy_path=tmp_path, create_missing_assets=False,
                                          initial_states=tmp_path))


def test_update_temperature_follows_the_rollout_temperature_unless_set(caplog):
    cfg = quickstart(temperature=0.7)
    check_trainer_settings(cfg)
    assert cfg.update.temperature == 0.7
    cfg = quickstart(temperature=0.7, **{"update.temperature": 1.6})
    with caplog.at_level(logging.WARNING, logger="wmpo"):
        check_trainer_settings(cfg)
    assert cfg.update.temperature == 1.6
    assert "update.temperature=1.6 differs from temperature=0.7" in caplog.text


def test_command_line_reports_a_bad_setting_in_one_line(tmp_path):
    run = subprocess.run([sys.executable, "-m", "wmpo.train", "--config-name", "quickstart", "save_freq=0",
                          f"output={tmp_path / 'run'}"], capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    assert "error: save_freq=0: must be ≥ 1" in run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "run" / "checkpoints").exists()
