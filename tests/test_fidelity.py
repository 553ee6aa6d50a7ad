import numpy as np
import pytest
import torch

from opensora.datasets.shards import Episode, index_episodes, write_shards
from opensora.models.vae import PixelShuffleVAE, frames_to_video, video_to_frames
from opensora.world_model import WorldModelSpec
from wmpo.experiments.fidelity import replay_open_loop, replay_outcomes

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


class ThresholdEnv:
    """Imagined-environment API whose "reward model" accepts once an action's raw dimension 0 reaches ``at``."""

    def __init__(self, at: float) -> None:
        self.wm = ScriptedWorldModel("copy")
        self.at, self.steps = at, 0

    def reset(self, first_frames, seeds):
        self.reached = False

    def step(self, normalized_actions):
        self.steps += 1
        self.reached |= bool((normalized_actions[0, :, 0] + 1 >= self.at).any())
        flag = torch.tensor([self.reached])
        return type("Step", (), {"done": flag, "success": flag})()


def test_replay_outcomes_judge_each_episodes_own_actions_against_its_real_outcome(tmp_path):
    long, short, tiny = ramp_episode("long", 24), ramp_episode("short", 16), ramp_episode("tiny", 5)
    long.meta["complete"] = True
    write_shards([long, short, tiny], tmp_path)
    env = ThresholdEnv(at=12)
    result = replay_outcomes(env, index_episodes([str(tmp_path)]), Q01, Q99, seed=0)
    # Both replays reach action 12 in their second chunk and stop there; the real outcomes differ.
    assert env.steps == 4
    assert result["states"] == 2 and result["imagined_success_rate"] == 1.0 and result["real_success_rate"] == 0.5
    assert result["confusion"]["imagined_success_real_failure"] == 1 and result["agreement"] == 0.5
    env = ThresholdEnv(at=20)  # only the long episode's actions get there
    result = replay_outcomes(env, index_episodes([str(tmp_path)]), Q01, Q99, seed=0)
    assert result["agreement"] == 1.0 and env.steps == 3 + 2
