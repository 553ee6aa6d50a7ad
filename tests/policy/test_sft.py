import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from opensora.datasets.shards import Episode, write_shards
from opensora.training.settings import SettingError
from wmpo.policy import load_policy
from wmpo.policy.action_tokenizer import ActionTokenizer, action_stats, normalize_actions
from wmpo.policy.processing import center_crop_resize, random_crop_resize
from wmpo.policy.sft import SFTConfig, action_slots, decode_slots, train
from wmpo.policy.tiny import unit_norm_stats

KEY = "square_d0_300_demos"


def test_tokens_of_bin_centers_decode_to_the_same_centers():
    tokenizer = ActionTokenizer(vocab_size=512)
    centers = tokenizer.bin_centers
    tokens = tokenizer.normalized_to_tokens(centers)
    assert torch.equal(tokenizer.tokens_to_normalized(tokens, torch.float64), centers)
    assert len(set(tokens.tolist())) == len(centers)  # every center has its own token
    edges = torch.linspace(-1, 1, 256, dtype=torch.float64)
    assert int(tokenizer.normalized_to_tokens(torch.tensor([1.0]))) == tokenizer.token_begin  # top edge: bin 256
    # A value between two edges decodes to the center of that bin.
    inside = (edges[:-1] + 0.3 * (edges[1:] - edges[:-1]))
    assert torch.equal(tokenizer.tokens_to_normalized(tokenizer.normalized_to_tokens(inside), torch.float64), centers)


def test_action_to_tokens_to_action_lands_on_bin_centers():
    rng = np.random.default_rng(0)
    stats = {"q01": np.array([-0.5, -0.2, 0.0, -1.0, -1.0, -0.1, -1.0]),
             "q99": np.array([0.5, 0.4, 2.0, 1.0, 0.5, 0.1, 1.0]), "mask": np.array([True] * 6 + [False])}
    actions = rng.uniform(stats["q01"], stats["q99"], size=(5, 8, 7))
    actions[..., 6] = rng.choice([-1.0, 1.0], size=(5, 8))
    tokenizer = ActionTokenizer(vocab_size=512)
    slots = action_slots(actions, stats, tokenizer)
    decoded = decode_slots(slots, stats, tokenizer)
    # Re-normalized, every decoded value is the center of the bin its action fell into.
    normalized = normalize_actions(decoded, stats).reshape(5, 56)
    index = np.searchsorted(np.linspace(-1, 1, 256), normalize_actions(actions, stats).reshape(5, 56), side="right") - 1
    expected = tokenizer.bin_centers.numpy()[np.clip(index, 0, 254)]
    np.testing.assert_allclose(normalized, expected, atol=1e-7)
    assert np.abs(decoded - actions)[..., :6].max() <= (stats["q99"] - stats["q01"]).max() / 255 + 1e-9


def test_random_crop_keeps_the_area_and_full_area_is_the_image():
    images = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8))
    assert torch.equal(random_crop_resize(images, 64, 1.0), center_crop_resize(images, 64, 1.0))
    a = random_crop_resize(images, 64, 0.9, torch.Generator().manual_seed(0))
    b = random_crop_resize(images, 64, 0.9, torch.Generator().manual_seed(0))
    c = random_crop_resize(images, 64, 0.9, torch.Generator().manual_seed(1))
    assert a.shape == (4, 64, 64, 3) and a.dtype == torch.uint8
    assert torch.equal(a, b) and not torch.equal(a, c)


def _demo_shards(path, episodes=6, steps=20, size=64):
    """Episodes whose actions are a function of the frame: a bright square's position decides the action."""
    rng = np.random.default_rng(0)
    written = []
    for number in range(episodes):
        video = np.zeros((steps + 1, size, size, 3), np.uint8)
        actions = np.zeros((steps, 7), np.float32)
        for t in range(steps + 1):
            x = int(rng.integers(0, size - 16))
            video[t, 8:24, x : x + 16] = 255
            if t < steps:
                actions[t, :6] = (x / (size - 16)) * 2 - 1
                actions[t, 6] = 1.0 if x > size // 3 else -1.0
        written.append(Episode(f"ep{number:03d}", video, actions, {"finish_step": steps, "complete": True}))
    write_shards(written, path)
    return path


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return _demo_shards(tmp_path_factory.mktemp("demos"))


def _config(shards, output, **overrides):
    settings = dict(shards=[str(shards)], output=str(output), preset="small", steps=30, batch_size=8, lr=1e-3,
                    warmup_steps=0, val_episodes=2, val_every=0, log_every=10, ckpt_every=10, task="square",
                    device="cpu")
    settings.update(overrides)
    return SFTConfig(**settings)


def test_sft_lowers_the_token_loss_and_writes_a_loadable_policy(shards, tmp_path):
    cfg = _config(shards, tmp_path / "run", steps=30, val_shards=[str(shards)], lr=2e-3)
    before = train(_config(shards, tmp_path / "zero", steps=1, lr=0.0, val_shards=[str(shards)]))
    after = train(cfg)
    assert after["val/loss"] < before["val/loss"] - 0.5
    assert after["val/token_accuracy"] > before["val/token_accuracy"]
    policy = load_policy(tmp_path / "run" / "policy", KEY)
    stats = json.loads((tmp_path / "run" / "policy" / "dataset_statistics.json").read_text())
    assert KEY in stats and stats[KEY]["num_trajectories"] == 6
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    out = policy.predict(frames, ["insert the square into the stick"] * 2, do_sample=False)
    assert out.actions.shape == (2, 8, 7)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows] == [0, 10, 20, 30]
    assert rows[-1]["val/loss"] < rows[0]["val/loss"]


def test_resumed_sft_matches_the_uninterrupted_run(shards, tmp_path):
    straight = tmp_path / "straight"
    train(_config(shards, straight, steps=20))
    resumed = tmp_path / "resumed"
    train(_config(shards, resumed, steps=10))
    train(_config(shards, resumed, steps=20))
    a = load_policy(straight / "policy").model.state_dict()
    b = load_policy(resumed / "policy").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line)["iteration"] for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert rows == [0, 10, 20]
    assert train(_config(shards, resumed, steps=20)) == {}  # complete: nothing more to do


def test_lora_sft_exports_merged_weights(shards, tmp_path):
    base = tmp_path / "base"
    train(_config(shards, base, steps=1, lr=0.0))
    train(_config(shards, tmp_path / "lora", steps=10, init_from=str(base / "policy"), lora_rank=4))
    start = load_policy(base / "policy").model.state_dict()
    tuned = load_policy(tmp_path / "lora" / "policy").model.state_dict()
    assert start.keys() == tuned.keys()
    changed = [k for k in start if not torch.equal(start[k], tuned[k])]
    assert changed and all(k.endswith("weight") for k in changed)


def test_settings_are_checked_before_any_work(shards, tmp_path):
    with pytest.raises(SettingError, match="steps=0"):
        train(_config(shards, tmp_path / "x", steps=0))
    with pytest.raises(SettingError, match="init_from"):
        train(_config(shards, tmp_path / "x", init_from=str(tmp_path / "missing")))
    with pytest.raises(SettingError, match="val_episodes"):
        train(_config(shards, tmp_path / "x", val_episodes=6))


@pytest.mark.sim
def test_the_trainer_runs_from_an_sft_policy(shards, tmp_path):
    from wmpo.trainer import Trainer
    from wmpo.trainer_config import load_trainer_config

    train(_config(shards, tmp_path / "sft", steps=2, preset="tiny", unnorm_key=KEY))
    overrides = {"output": tmp_path / "run", "policy_path": tmp_path / "sft" / "policy",
                 "initial_states": tmp_path / "states", "iterations": 1, "test_freq": 0, "imagination.max_steps": 8,
                 "imagination.min_steps": 0}
    cfg = load_trainer_config("configs/quickstart.yaml", [f"{k}={v}" for k, v in overrides.items()])
    trainer = Trainer(cfg)
    assert trainer.backend.policy.stats["q99"].shape == (7,)
    trainer.fit()
    assert (tmp_path / "run" / "checkpoints" / "iteration_000001" / "actor" / "config.json").is_file()


def test_unit_stats_give_identity_normalization():
    stats = action_stats(unit_norm_stats([KEY]), KEY)
    actions = np.linspace(-1, 1, 14).reshape(2, 7)
    np.testing.assert_allclose(normalize_actions(actions, stats), actions, atol=1e-7)


@pytest.mark.slow
def test_sft_under_torchrun_writes_a_loadable_policy(shards, tmp_path):
    output = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               "29611", "-m", "wmpo.sft", f"shards=[{shards}]", f"output={output}", "preset=small",
               "steps=4", "batch_size=2", "ckpt_every=2", "val_every=0", "log_every=2",
               "task=square", "device=cpu"]
    subprocess.run(command, check=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    policy = load_policy(output / "policy", KEY)
    assert policy.predict(np.zeros((1, 64, 64, 3), np.uint8), ["x"], do_sample=False).actions.shape == (1, 8, 7)
    rows = [json.loads(line)["iteration"] for line in (output / "metrics.jsonl").read_text().splitlines()]
    assert rows == [0, 2, 4]


def test_a_non_finite_loss_stops_sft_before_the_step_and_keeps_the_checkpoints(shards, tmp_path, monkeypatch):
    output = tmp_path / "run"
    train(_config(shards, output, steps=10, ckpt_every=5))
    kept = sorted(p.name for p in (output / "checkpoints").iterdir())
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite SFT loss at step 10"):
        train(_config(shards, output, steps=20, ckpt_every=5))
    assert sorted(p.name for p in (output / "checkpoints").iterdir()) == kept
