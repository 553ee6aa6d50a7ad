import json
import math
import re

import pytest
import torch
from safetensors.torch import load_file

from opensora.checkpoint_io import load_weights
from opensora.datasets.shards import write_shards
from opensora.datasets.synthetic import moving_square_episodes
from opensora.models.stdit3 import STDiT3, preset
from opensora.train import main, train
from opensora.training.config import load_config


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_shards(moving_square_episodes(6, steps=16, seed=1), root / "shards", max_shard_bytes=100_000)
    stats = {"synthetic": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}}
    (root / "stats.json").write_text(json.dumps(stats))
    return root


def tiny_config(root, output, **overrides):
    args = [
        f"data.shards=[{root / 'shards'}]",
        f"data.stats={root / 'stats.json'}",
        f"output={output}",
        "data.batch_size=2",
        "val_windows=2",
        "val_sampling_steps=2",
    ] + [f"{k}={v}" for k, v in overrides.items()]
    return load_config("configs/world_model/tiny.yaml", args)


def test_resumed_run_reaches_the_same_state_as_an_uninterrupted_one(synthetic, tmp_path):
    train(tiny_config(synthetic, tmp_path / "straight", max_steps=6, ckpt_every=3))
    train(tiny_config(synthetic, tmp_path / "resumed", max_steps=3, ckpt_every=3))
    assert (tmp_path / "resumed" / "checkpoints" / "step_0000003" / "ema.safetensors").is_file()
    train(tiny_config(synthetic, tmp_path / "resumed", max_steps=6, ckpt_every=3))
    for name in ("model.safetensors", "ema.safetensors"):
        straight = load_file(tmp_path / "straight" / "checkpoints" / "step_0000006" / name)
        resumed = load_file(tmp_path / "resumed" / "checkpoints" / "step_0000006" / name)
        assert straight.keys() == resumed.keys()
        assert all(torch.equal(straight[k], resumed[k]) for k in straight), name
    first = load_file(tmp_path / "straight" / "checkpoints" / "step_0000003" / "model.safetensors")
    assert any(not torch.equal(first[k], straight[k]) for k in straight)
    # The EMA weights load strictly as world-model weights.
    final = tmp_path / "straight" / "checkpoints" / "step_0000006"
    load_weights(STDiT3(preset("tiny-pixel")), final / "ema.safetensors")
    lines = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    assert any("val/psnr" in line for line in lines)
    assert (tmp_path / "straight" / "validation" / "step_0000006.png").is_file()


def test_dry_run_prints_the_resolved_configuration(capsys):
    main(["--config", "configs/world_model/train_mimicgen.yaml", "--dry-run", "data.batch_size=2"])
    out = capsys.readouterr()
    assert "batch_size: 2" in out.out and "preset: XL/2" in out.out and "eps: 1.0e-15" in out.out
    assert "OpenX_pretrained" in out.err  # missing files are reported, not fatal


@pytest.mark.parametrize(
    "script, data", [("square_1280", "square_1280_demos"), ("coffee_1280", "coffee_1280_demos_dpo")]
)
def test_example_scripts_resolve_the_released_data(script, data):
    import subprocess

    result = subprocess.run(
        ["bash", f"examples/opensora/{script}.sh", "--dry-run"], capture_output=True, text=True, check=True
    )
    assert f"data_files/example_rollouts/{data}" in result.stdout
    assert f"statistics/{script.split('_1280')[0]}/dataset_statistics.json" in result.stdout


@pytest.mark.slow
def test_tiny_world_model_learns_action_driven_motion(tmp_path):
    """1500 CPU steps on 16-pixel moving squares: the loss falls and held-out predictions beat copying the last
    context frame in latent MSE and in PSNR."""
    import numpy as np

    from opensora.datasets.synthetic import moving_square_episode

    rng = np.random.default_rng(0)
    episodes = [moving_square_episode(f"e{i:04d}", 24, 16, rng, side=4) for i in range(122)]
    write_shards(episodes, tmp_path / "shards")
    stats = {"synthetic": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    cfg = tiny_config(tmp_path, tmp_path / "run", max_steps=1500, ckpt_every=1500, val_every=0)
    cfg.data.batch_size, cfg.optim.lr, cfg.val_sampling_steps = 8, 2e-3, 20
    metrics = train(cfg)
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [line["loss"] for line in lines if "loss" in line]
    held_out = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
    print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}; held-out: {held_out}")
    assert losses[-1] < 0.5 * losses[0]
    assert metrics["val/latent_mse"] < metrics["val/latent_mse_copy"]
    assert metrics["val/psnr"] > metrics["val/psnr_copy"]


def test_settings_out_of_range_are_refused_before_training(synthetic, tmp_path):
    from opensora.training.settings import SettingError

    for key, value in (("keep_last", 0), ("ckpt_every", 0), ("max_steps", 0), ("optim.lr", -1.0),
                       ("optim.decay", "linear")):
        with pytest.raises(SettingError, match=re.escape(f"{key}={value!r}")):
            tiny_config(synthetic, tmp_path / "run", **{key: value})
    with pytest.raises(SettingError, match="resume=.*no such folder"):
        tiny_config(synthetic, tmp_path / "run", resume=tmp_path / "nonexistent")


def test_a_non_finite_loss_stops_training_before_the_step_and_keeps_the_good_checkpoints(synthetic, tmp_path,
                                                                                          monkeypatch):
    from opensora.schedulers.rflow import RFlow

    real_loss, calls = RFlow.training_loss, []

    def poisoned(self, *args, **kwargs):
        calls.append(1)
        loss = real_loss(self, *args, **kwargs)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(RFlow, "training_loss", poisoned)
    output = tmp_path / "run"
    with pytest.raises(FloatingPointError, match="step 2.*step_0000002"):
        train(tiny_config(synthetic, output, max_steps=6, ckpt_every=1, keep_last=5))
    names = sorted(p.name for p in (output / "checkpoints").iterdir())
    assert names == ["step_0000001", "step_0000002"]
    weights = load_file(output / "checkpoints" / "step_0000002" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_metrics_of_a_resumed_run_read_as_one_run(synthetic, tmp_path):
    output = tmp_path / "run"
    train(tiny_config(synthetic, output, max_steps=4, ckpt_every=2, log_every=1, val_windows=0))
    # A crash after logging steps 3-4 but before checkpointing step 4.
    import shutil

    shutil.rmtree(output / "checkpoints" / "step_0000004")
    train(tiny_config(synthetic, output, max_steps=4, ckpt_every=2, log_every=1, val_windows=0))
    steps = [json.loads(line)["step"] for line in (output / "metrics.jsonl").open()]
    assert steps == [1, 2, 3, 4]


def test_cosine_decay_brings_the_learning_rate_to_zero_at_max_steps(synthetic, tmp_path):
    output = tmp_path / "run"
    train(tiny_config(synthetic, output, max_steps=4, log_every=1, val_windows=0,
                      **{"optim.decay": "cosine", "optim.warmup_steps": 0, "optim.lr": 0.01}))
    logged = [json.loads(line)["lr"] for line in (output / "metrics.jsonl").open()]
    # The rate logged after step s is the one the next step uses: 0.01 * (1 + cos(pi * s / 4)) / 2.
    assert logged == pytest.approx([0.01 * (1 + math.cos(math.pi * s / 4)) / 2 for s in (1, 2, 3, 4)], abs=1e-12)


def _wait_for_rows(path, count, process, timeout=240):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if path.is_file() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{path} did not reach {count} rows")


def test_sigterm_checkpoints_the_finished_step_and_a_rerun_continues(synthetic, tmp_path):
    import signal
    import subprocess
    import sys

    output = tmp_path / "run"
    args = [sys.executable, "-m", "opensora.train", "--config", "configs/world_model/tiny.yaml",
            f"data.shards=[{synthetic / 'shards'}]", f"data.stats={synthetic / 'stats.json'}", f"output={output}",
            "data.batch_size=2", "val_windows=0", "log_every=1", "ckpt_every=100000", "max_steps=100000"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(output / "metrics.jsonl", 2, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2 and "stopped by SIGTERM after step" in err and "Traceback" not in err
    (saved,) = (output / "checkpoints").iterdir()
    step = int(saved.name.removeprefix("step_"))
    assert step >= 2 and json.loads((saved / "state.json").read_text())["step"] == step
    train(tiny_config(synthetic, output, max_steps=step + 1, val_windows=0, log_every=1))
    steps = [json.loads(line)["step"] for line in (output / "metrics.jsonl").open()]
    assert steps == list(range(1, step + 2))
