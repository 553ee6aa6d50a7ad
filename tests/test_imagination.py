import pytest
import torch

from opensora.world_model import WorldModel, WorldModelSpec
from wmpo.imagination import ImaginedEnv
from wmpo.policy import load_policy
from wmpo.policy.tiny import write_tiny_checkpoint
from wmpo.reward import build_reward_model
from wmpo.reward.scoring import score_windows
from wmpo.rollout.imagined import imagine_groups


def make_env(threshold, stop_on_success=True):
    torch.manual_seed(0)
    wm = WorldModel.build(WorldModelSpec(model_preset="tiny", vae_preset="tiny", num_sampling_steps=2))
    return ImaginedEnv(wm, build_reward_model("tiny"), threshold, max_steps=24, min_steps=0,
                       stop_on_success=stop_on_success)


def run(env, first, seeds, actions):
    env.reset(first, seeds)
    steps = []
    for chunk in actions:
        steps.append(env.step(chunk))
        if bool(steps[-1].done.all()):
            break
    return steps


def test_horizon_without_success_and_reproducible_frames():
    env = make_env(threshold=2.0)
    first = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    actions = torch.rand(4, 2, 8, 7) * 2 - 1
    steps = run(env, first, [1, 2], actions)
    assert len(steps) == 3 and steps[-1].done.all() and not steps[-1].success.any()
    assert steps[-1].finish_step.tolist() == [24, 24]  # 1 + 3·8 frames, last index 24
    again = run(env, first, [1, 2], actions)
    assert all(torch.equal(a.frames, b.frames) for a, b in zip(steps, again))


def test_trajectories_stop_at_their_first_success_window():
    env = make_env(threshold=-1.0)  # every window counts as success
    first = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    steps = run(env, first, [1, 2], torch.zeros(4, 2, 8, 7))
    assert len(steps) == 1 and steps[0].success.all() and steps[0].finish_step.tolist() == [7, 7]
    env = make_env(threshold=-1.0, stop_on_success=False)
    steps = run(env, first, [1, 2], torch.zeros(4, 2, 8, 7))
    assert len(steps) == 3 and steps[-1].finish_step.tolist() == [7, 7]  # full horizon, earliest window kept


def test_recorded_videos_carry_the_window_scores(tmp_path):
    env = make_env(threshold=2.0)
    policy = load_policy(write_tiny_checkpoint(tmp_path / "policy"), "square_d0_300_demos")
    first = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    batch = imagine_groups(policy, env, first, [0], [0], 2, "square", 1.6, seed=0, record_videos=True)
    assert batch.videos.shape[:2] == batch.frame_scores.shape == (2, 25)
    expected = score_windows(env.reward_model, batch.videos[0], window=8, min_steps=0)
    torch.testing.assert_close(batch.frame_scores[0, 7:], expected, atol=1e-5, rtol=0)
    assert torch.isnan(batch.frame_scores[:, :7]).all()


def test_the_policy_sees_jpeg_resized_frames_in_imagination(tmp_path):
    from wmpo.policy.rlds_resize import rlds_resize

    env = make_env(threshold=2.0)
    policy = load_policy(write_tiny_checkpoint(tmp_path / "policy"), "square_d0_300_demos")
    first = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    plain = imagine_groups(policy, env, first, [0], [0], 2, "square", 1.6, seed=0, record_videos=True)
    resized = imagine_groups(policy, env, first, [0], [0], 2, "square", 1.6, seed=0, record_videos=True,
                             jpeg_resize=True)
    size = policy.image_size
    assert plain.frames.shape[2:4] == (32, 32) and resized.frames.shape[2:4] == (size, size)
    assert torch.equal(resized.frames[:, 0], rlds_resize(first, size).expand(2, -1, -1, -1))
    assert torch.equal(resized.frames[0, 1], rlds_resize(resized.videos[0, 8][None], size)[0])


def test_continuous_batching_gives_every_trajectory_the_same_outcome(tmp_path):
    policy = load_policy(write_tiny_checkpoint(tmp_path / "policy"), "square_d0_300_demos")
    first = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    batches = {}
    for slots in (0, 3):  # all 8 trajectories at once, or 3 at a time with freed slots refilled
        env = make_env(threshold=0.55)  # the random classifier's scores straddle it: trajectories stop at 1-3 chunks
        batches[slots] = imagine_groups(policy, env, first, [0, 1], [0, 1], 4, "square", 1.6, seed=0,
                                        record_videos=True, slots=slots)
    whole, slotted = batches[0], batches[3]
    assert len(set(whole.num_chunks.tolist())) > 1
    for name in ("responses", "num_chunks", "complete", "finish_step"):
        assert torch.equal(getattr(whole, name), getattr(slotted, name)), name
    # A different batch composition rounds the float arithmetic differently (as the shrinking batch of a round
    # without slots already does): a decoded pixel may move by one level, a log-prob by float noise.
    for name in ("frames", "videos"):
        assert (getattr(whole, name).int() - getattr(slotted, name).int()).abs().max() <= 1, name
    torch.testing.assert_close(whole.old_log_probs, slotted.old_log_probs, rtol=0, atol=1e-5)
    torch.testing.assert_close(whole.frame_scores, slotted.frame_scores, rtol=0, atol=1e-4, equal_nan=True)


def test_a_finished_trajectory_cannot_be_stepped_again():
    env = make_env(threshold=-1.0)
    env.reset(torch.zeros(2, 32, 32, 3, dtype=torch.uint8), [1, 2])
    env.step(torch.zeros(2, 8, 7), rows=[0])
    with pytest.raises(ValueError, match=r"rows \[0\]"):
        env.step(torch.zeros(2, 8, 7), rows=[0, 1])
