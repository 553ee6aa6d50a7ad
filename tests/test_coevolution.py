"""Co-evolution: real collection and world-model fine-tuning during a WMPO run, resumable."""

import json

import pytest
import torch
from safetensors.torch import load_file

from opensora.datasets.shards import index_episodes, write_shards
from opensora.datasets.synthetic import moving_square_episodes
from opensora.train import train
from opensora.training.checkpointing import latest_checkpoint
from opensora.training.config import load_config
from wmpo.trainer import Trainer
from wmpo.trainer_config import load_trainer_config


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A two-step tiny world-model run over 64x64 frames (the built-in Lift task's size)."""
    root = tmp_path_factory.mktemp("coevolve")
    write_shards(moving_square_episodes(4, steps=16, size=64, seed=1), root / "shards")
    (root / "stats.json").write_text(json.dumps({"lift": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}}))
    train(load_config("configs/world_model/tiny.yaml", [
        f"data.shards=[{root / 'shards'}]", f"data.stats={root / 'stats.json'}", f"output={root / 'wm'}",
        "data.batch_size=2", "val_windows=0", "max_steps=2", "ckpt_every=2", "log_every=1"]))
    return root


def config(root, output, iterations):
    settings = {
        "task": "lift", "output": output, "iterations": iterations, "test_freq": 0, "monitors.enable": False,
        "policy_path": root / "assets" / "policy", "initial_states": root / "assets" / "initial_states",
        # One chunk, one denoising step and every group kept: the tiny-pixel model at 64x64 is slow on a CPU.
        "imagination.max_steps": 8, "imagination.world_model.num_sampling_steps": 1, "n_samples": 2,
        "train_batch_size": 1, "rollout_batch_size": 1, "max_generation_rounds": 1, "accuracy_lower_bound": 0.0,
        "accuracy_upper_bound": 1.0, "update.ppo_mini_batch_size": 2, "update.traj_mini_batch_size": 1,
        "imagination.world_model.model_preset": "tiny-pixel",
        "imagination.world_model.vae_preset": "pixel",
        "imagination.world_model.model_path": root / "wm" / "checkpoints" / "step_0000002" / "ema.safetensors",
        "coevolve.every": 1, "coevolve.trajectories": 2, "coevolve.wm_steps": 2,
        "coevolve.world_model_run": root / "wm",
    }
    return load_trainer_config("configs/quickstart.yaml", [f"{key}={value}" for key, value in settings.items()])


def weights(trainer):
    return {k: v.clone() for k, v in trainer.backend.host.env.wm.model.state_dict().items()}


@pytest.mark.sim
@pytest.mark.slow
def test_the_world_model_is_refreshed_on_real_data_and_a_resumed_run_ends_the_same(source_run, tmp_path):
    straight = Trainer(config(source_run, tmp_path / "straight", 2))
    straight.fit()
    rows = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [row["coevolve/real_trajectories"] for row in rows] == [0.0, 2.0]
    assert rows[1]["coevolve/round"] == 1.0 and 0.0 <= rows[1]["coevolve/collected_success"] <= 1.0
    collected = index_episodes([str(tmp_path / "straight" / "coevolve" / "round_001")])
    assert len(collected) == 2 and all(len(e.actions.open()) == e.finish_step for e in collected)
    # The fine-tuning continued the source run's two steps by two more, and imagination now uses its EMA weights.
    run = latest_checkpoint(tmp_path / "straight" / "coevolve" / "world_model")
    assert run.name == "step_0000004"
    refreshed = load_file(run / "ema.safetensors")
    source = load_file(source_run / "wm" / "checkpoints" / "step_0000002" / "ema.safetensors")
    now = weights(straight)
    assert all(torch.equal(now[k], refreshed[k]) for k in refreshed)
    assert any(not torch.equal(source[k], refreshed[k]) for k in source)
    saved = load_file(tmp_path / "straight" / "checkpoints" / "iteration_000002" / "world_model.safetensors")
    assert all(torch.equal(saved[k], refreshed[k]) for k in refreshed)

    # A run stopped after iteration 1 owes the refresh; its rerun does it first and ends as the straight run.
    Trainer(config(source_run, tmp_path / "resumed", 1)).fit()
    assert not (tmp_path / "resumed" / "coevolve").exists()
    resumed = Trainer(config(source_run, tmp_path / "resumed", 2))
    resumed.fit()
    a, b = straight.backend.policy.model.state_dict(), resumed.backend.policy.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    again = weights(resumed)
    assert all(torch.equal(now[k], again[k]) for k in now)
    reloaded = Trainer(config(source_run, tmp_path / "resumed", 2))
    assert reloaded.coevolution.rounds == 1
    assert all(torch.equal(now[k], v) for k, v in weights(reloaded).items())
