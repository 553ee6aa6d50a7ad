import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from opensora.datasets.shards import ShardError, index_episodes, write_shards
from opensora.datasets.synthetic import success_episode
from wmpo.reward import load_reward_model, score_video
from wmpo.reward.training import threshold_metrics, training_clips, validation_clips

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train_reward_model  # noqa: E402


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("reward_shards")
    write_shards([success_episode(f"e{i:04d}", 40, 32, rng, succeed=bool(i % 2)) for i in range(80)], root)
    return root


def test_clips_are_labelled_from_the_episode_outcome(shards):
    episodes = index_episodes(shards)[:4]
    clips, labels = training_clips(episodes, np.random.default_rng(0))
    assert clips.shape[1:] == (8, 32, 32, 3)
    assert labels.tolist()[0::2] == [int(e.meta["complete"]) for e in episodes] and not any(labels[1::2])
    end = np.asarray(episodes[1].video.open()[episodes[1].finish_step - 8 : episodes[1].finish_step])
    assert np.array_equal(clips[2], end)
    val_clips, val_labels = validation_clips(episodes[:1], stride=8)
    assert len(val_clips) == 1 + (episodes[0].finish_step - 8) // 8 and val_labels.sum() == 0


def test_an_episode_recorded_past_its_success_is_labelled_at_the_success(tmp_path):
    from opensora.datasets.shards import Episode

    video = np.broadcast_to(np.arange(41, dtype=np.uint8)[:, None, None, None], (41, 4, 4, 3)).copy()
    meta = {"finish_step": 40, "complete": True, "success_step": 30}
    write_shards([Episode("past", video, np.zeros((40, 7), np.float32), meta)], tmp_path)
    episodes = index_episodes(tmp_path)
    clips, labels = training_clips(episodes, np.random.default_rng(0))
    assert labels.tolist() == [1, 0] and clips[0, :, 0, 0, 0].tolist() == list(range(22, 30))
    assert clips[1, -1, 0, 0, 0] < 22  # the negative ends before the success clip starts
    val_clips, val_labels = validation_clips(episodes, stride=8)
    assert val_labels.tolist() == [1, 0, 0] and val_clips[:, -1, 0, 0, 0].tolist() == [29, 21, 13]


def test_threshold_metrics_by_hand():
    scores = np.array([0.9, 0.8, 0.4, 0.2])
    labels = np.array([1, 0, 1, 0])
    result = threshold_metrics(scores, labels, grid=np.array([0.5, 0.85]))
    low, high = result["grid"]
    assert (low["precision"], low["recall"]) == (0.5, 0.5)
    assert (high["precision"], high["recall"], round(high["f1"], 4)) == (1.0, 0.5, 0.6667)
    assert result["best"]["threshold"] == 0.85


def test_training_resumes_and_saves_a_loadable_model(shards, tmp_path):
    args = dict(shards=[str(shards)], preset="tiny", val_episodes=10, episodes_per_step=4, lr=1e-3, eval_every=5)
    straight = train_reward_model.train(train_reward_model.Config(**args, steps=10, output=str(tmp_path / "a")))
    train_reward_model.train(train_reward_model.Config(**args, steps=5, output=str(tmp_path / "b")))
    resumed = train_reward_model.train(train_reward_model.Config(**args, steps=10, output=str(tmp_path / "b")))
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert straight == resumed
    model = load_reward_model(tmp_path / "a" / "reward_model.pth", "tiny")
    assert json.loads((tmp_path / "a" / "threshold.json").read_text())["step"] in (5, 10)
    assert model.config.num_frames == 8


@pytest.mark.slow
def test_tiny_classifier_learns_visible_success(shards, tmp_path):
    cfg = train_reward_model.Config(
        shards=[str(shards)], preset="tiny", val_episodes=20, episodes_per_step=8, lr=1e-3, eval_every=50,
        steps=200, output=str(tmp_path / "run"),
    )
    best = train_reward_model.train(cfg)
    print(f"held-out F1 {best['f1']:.3f} at threshold {best['threshold']:.3f} (step {best['step']})")
    assert best["f1"] >= 0.9
    # The saved classifier finds success in a held-out successful video and not in a failed one.
    model = load_reward_model(tmp_path / "run" / "reward_model.pth", "tiny")
    held_out = index_episodes(shards)[-20:]
    for episode in held_out[:4]:
        video = torch.from_numpy(np.array(episode.video.open()))
        decision = score_video(model, video, best["threshold"], min_steps=0)
        assert decision.complete == bool(episode.meta["complete"])


def test_shards_of_mixed_frame_sizes_are_named(shards, tmp_path):
    rng = np.random.default_rng(1)
    write_shards([success_episode("big", 40, 48, rng, succeed=True)], tmp_path / "big")
    config = train_reward_model.Config(shards=[str(shards), str(tmp_path / "big")], preset="tiny", val_episodes=2,
                                       steps=1, output=str(tmp_path / "run"))
    with pytest.raises(ShardError, match=r"mixed frame sizes: 32x32x3 in .*; 48x48x3 in .*episode big"):
        train_reward_model.train(config)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_non_finite_loss_stops_reward_training_and_keeps_the_saved_model(shards, tmp_path, monkeypatch):
    args = dict(shards=[str(shards)], preset="tiny", val_episodes=10, episodes_per_step=4, lr=1e-3, eval_every=2,
                output=str(tmp_path / "run"))
    train_reward_model.train(train_reward_model.Config(**args, steps=2))
    saved = (tmp_path / "run" / "reward_model.pth").read_bytes()
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite reward-model loss at step 2"):
        train_reward_model.train(train_reward_model.Config(**args, steps=4))
    assert (tmp_path / "run" / "reward_model.pth").read_bytes() == saved
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["step"] == 2
