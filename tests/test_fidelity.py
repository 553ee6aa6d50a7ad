import numpy as np
import pytest
import torch

from opensora.datasets.shards import Episode, index_episodes, write_shards
from opensora.models.vae import PixelShuffleVAE, frames_to_video, video_to_frames
from opensora.world_model import WorldModelSpec
from wmpo.fidelity import (balanced_threshold, precision_recall, ranking_auc, replay_open_loop, replay_scores,
                           replayed_episodes)

Q01, Q99 = np.zeros(7, np.float32), np.full(7, 2.0, np.float32)  # normalized = raw − 1


def ramp_episode(key: str, steps: int) -> Episode:
    """Frame j is filled with 9·j; action k (which produces frame k + 1) carries k in dimension 0."""
    video = np.broadcast_to((9 * np.arange(steps + 1, dtype=np.uint8))[:, None, None, None], (steps + 1, 8, 8, 3))
    actions = np.zeros((steps, 7), np.float32)
    actions[:, 0] = np.arange(steps)
    return Episode(key, video.copy(), actions, {"finish_step": steps, "complete": False})


class ScriptedWorldModel:
    """The world-model step API over the exact pixel VAE, with a scripted prediction instead of a transformer."""

    def __init__(self, mode: str) -> None:
        self.spec = WorldModelSpec(chunk=8, context_frames=4)
        self.vae = PixelShuffleVAE(factor=2)
        self.mode = mode
        self.device = torch.device("cpu")

    def initial_context(self, frames, generator=None):
        latent = self.vae.encode(frames_to_video(frames[:, None]))
        return latent.expand(-1, -1, self.spec.context_frames, -1, -1).contiguous()

    def predict(self, context, actions, generators):
        if self.mode == "copy":
            return context[:, :, -1:].expand(-1, -1, self.spec.chunk, -1, -1).contiguous()
        produced = (actions[0, :, 0] + 1).round().long() + 1  # the frame index each action leads to
        frames = (9 * produced).to(torch.uint8)[None, :, None, None, None].expand(1, -1, 8, 8, 3)
        return self.vae.encode(frames_to_video(frames))

    def decode(self, latents):
        return video_to_frames(self.vae.decode(latents))

    def next_context(self, context, latents):
        return torch.cat([context, latents], dim=2)[:, :, -self.spec.context_frames :]


@pytest.fixture
def episodes(tmp_path):
    write_shards([ramp_episode("long", 24), ramp_episode("short", 16), ramp_episode("tiny", 5)], tmp_path)
    return index_episodes([str(tmp_path)])


def test_open_loop_replay_compares_each_imagined_frame_with_the_real_frame_it_stands_for(episodes, tmp_path):
    result = replay_open_loop(ScriptedWorldModel("oracle"), episodes, Q01, Q99, seed=0, strip_path=tmp_path / "s.png")
    assert result["episodes"] == 2  # the 5-step episode has no full chunk
    assert len(result["psnr_per_chunk"]) == 3
    assert min(result["psnr_per_chunk"]) > 45  # off by at most the decoder's truncation (a frame late: 29 dB)
    # Repeating frame 0 against frames 1..8 of both episodes: values 9..72 vs 0.
    expected = np.mean([(9.0 * j) ** 2 for j in range(1, 9)])
    assert result["copy_first_psnr_per_chunk"][0] == pytest.approx(10 * np.log10(255.0**2 / expected))
    assert (tmp_path / "s.png").stat().st_size > 0


def test_open_loop_replay_of_a_world_model_that_copies_its_context_equals_the_copy_baseline(episodes):
    result = replay_open_loop(ScriptedWorldModel("copy"), episodes, Q01, Q99, seed=0)
    assert result["psnr_per_chunk"] == pytest.approx(result["copy_first_psnr_per_chunk"])
    assert result["psnr"] == pytest.approx(result["copy_first_psnr"])
    assert result["psnr_per_chunk"][0] > result["psnr_per_chunk"][-1]  # the frames drift further from frame 0


def test_episodes_in_memory_replay_like_the_same_episodes_read_from_shards(episodes):
    in_memory = [ramp_episode("long", 24), ramp_episode("short", 16), ramp_episode("tiny", 5)]
    assert replay_open_loop(ScriptedWorldModel("oracle"), in_memory, Q01, Q99, seed=0) == replay_open_loop(
        ScriptedWorldModel("oracle"), episodes, Q01, Q99, seed=0)


def test_precision_and_recall_of_success_decisions():
    predicted = np.array([True, True, False, False, True])
    real = np.array([True, False, True, False, True])
    assert precision_recall(predicted, real) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    precision, recall = precision_recall(np.zeros(3, bool), np.array([True, False, False]))
    assert np.isnan(precision) and recall == 0.0


def test_replayed_episodes_imagine_each_episode_from_its_actions_and_keep_its_real_outcome(tmp_path):
    stopped, failed = ramp_episode("stopped_at_success", 19), ramp_episode("failed", 16)
    stopped.meta["complete"] = True
    write_shards([stopped, failed], tmp_path)
    replays = replayed_episodes(ScriptedWorldModel("oracle"), index_episodes([str(tmp_path)]), Q01, Q99, seed=0)
    assert [r.key for r in replays] == ["replay_stopped_at_success", "replay_failed"]
    first, second = replays
    # 19 actions: three chunks, the last action held to the third chunk's end, so frame 19 repeats to frame 24.
    assert first.video.shape == (25, 8, 8, 3) and first.video.dtype == np.uint8
    expected = np.concatenate([stopped.video, np.repeat(stopped.video[-1:], 5, axis=0)])
    assert np.abs(first.video.astype(int) - expected.astype(int)).max() <= 1
    assert np.array_equal(first.actions, stopped.actions)
    assert first.meta == {"finish_step": 19, "complete": True, "replay_of": "stopped_at_success"}
    assert second.video.shape == (17, 8, 8, 3) and second.meta["complete"] is False
    copied = replayed_episodes(ScriptedWorldModel("copy"), index_episodes([str(tmp_path)]), Q01, Q99, seed=0)
    assert np.abs(copied[0].video.astype(int) - stopped.video[0].astype(int)).max() <= 1  # a model, not the real video


class RampScoreEnv:
    """Imagined-environment API whose "reward model" scores a replay by the largest raw action dimension 0 seen so
    far, divided by 30, and decides (stops) at ``threshold``."""

    def __init__(self, threshold: float) -> None:
        self.wm = ScriptedWorldModel("copy")
        self.threshold, self.steps = threshold, 0

    def reset(self, first_frames, seeds):
        self.best = 0.0

    def step(self, normalized_actions):
        self.steps += 1
        self.last_chunk = normalized_actions[0, :, 0] + 1
        self.best = max(self.best, float((normalized_actions[0, :, 0] + 1).max()) / 30)
        flag = torch.tensor([self.best >= self.threshold])
        return type("Step", (), {"done": flag, "success": flag})()

    def best_scores(self):
        return [self.best]


def test_replay_scores_replay_each_episodes_own_actions_to_their_end_against_its_real_outcome(tmp_path):
    long, short, tiny = ramp_episode("long", 24), ramp_episode("short", 16), ramp_episode("tiny", 5)
    long.meta["complete"] = True
    write_shards([long, short, tiny], tmp_path)
    env = RampScoreEnv(threshold=0.3)
    scores, real = replay_scores(env, index_episodes([str(tmp_path)]), Q01, Q99, seed=0)
    # Neither replay stops at the environment's threshold: 3 + 2 + 1 chunks, the largest actions 23, 15 and 4.
    assert env.steps == 6 and env.threshold == 0.3
    assert scores == pytest.approx([23 / 30, 15 / 30, 4 / 30]) and real.tolist() == [True, False, False]


def test_replay_scores_finish_a_partial_last_chunk_by_holding_the_last_action(tmp_path):
    stopped = ramp_episode("stopped_at_success", 19)
    stopped.meta["complete"] = True
    write_shards([stopped], tmp_path)
    env = RampScoreEnv(threshold=0.3)
    scores, real = replay_scores(env, index_episodes([str(tmp_path)]), Q01, Q99, seed=0)
    assert env.steps == 3 and scores == pytest.approx([18 / 30]) and real.tolist() == [True]
    assert env.last_chunk.tolist() == pytest.approx([16, 17, 18, 18, 18, 18, 18, 18])


def test_balanced_threshold_separates_the_classes_and_breaks_ties_towards_the_preferred_value():
    scores = np.array([0.2, 0.4, 0.5, 0.7, 0.9])
    real = np.array([False, False, True, True, True])
    assert balanced_threshold(scores, real, prefer=0.8) == pytest.approx(0.45)
    # 0.2 and 0.6 both reach a balanced accuracy of 0.75: the one nearest the preferred value wins.
    tied = np.array([0.1, 0.3, 0.5, 0.7]), np.array([False, True, False, True])
    assert balanced_threshold(*tied, prefer=0.35) == pytest.approx(0.2)
    assert balanced_threshold(*tied, prefer=0.9) == pytest.approx(0.6)
    # Scores that rank failures above successes beat chance nowhere: the preferred value, not "accept all".
    inverted = np.array([0.1, 0.3, 0.5, 0.7]), np.array([True, True, False, False])
    assert balanced_threshold(*inverted, prefer=0.35) == 0.35
    assert balanced_threshold(scores, np.ones(5, bool), prefer=0.8) == 0.8
    imbalanced = balanced_threshold(np.array([0.1, 0.3, 0.5, 0.6, 0.8]), np.array([False, True, True, True, True]),
                                    prefer=0.9)
    assert imbalanced == pytest.approx(0.2)


def test_ranking_auc_counts_ordered_pairs():
    assert ranking_auc([0.9, 0.8, 0.1, 0.2], [True, True, False, False]) == 1.0
    assert ranking_auc([0.1, 0.2, 0.9, 0.8], [True, True, False, False]) == 0.0
    # Pairs (0.5 vs 0.5) tie, (0.5 vs 0.2) and (0.7 vs both) are ordered: (0.5 + 1 + 1 + 1) / 4.
    assert ranking_auc([0.5, 0.7, 0.5, 0.2], [True, True, False, False]) == 0.875
    assert ranking_auc([0.5, 0.7], [True, True]) is None
