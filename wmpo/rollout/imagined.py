"""Imagined rollouts of whole groups: the policy and the imagined environment alternate chunk by chunk."""

from __future__ import annotations

import numpy as np
import torch

from wmpo.distributed.collectives import any_true
from wmpo.imagination import ImaginedEnv
from wmpo.policy.modeling import NUM_ACTION_TOKENS
from wmpo.policy.policy import VLAPolicy
from wmpo.policy.rlds_resize import rlds_resize
from wmpo.rollout.trajectories import Trajectories, new_trajectories


def imagine_groups(
    policy: VLAPolicy,
    env: ImaginedEnv,
    first_frames: torch.Tensor,
    state_ids: list[int],
    group_ids: list[int],
    n_samples: int,
    instruction: str,
    temperature: float,
    seed: int,
    record_videos: bool = False,
    jpeg_resize: bool = False,
) -> Trajectories:
    """Roll ``n_samples`` trajectories from each first frame (G, H, W, 3) until each finishes; with ``jpeg_resize``
    the policy sees (and the trajectories keep) its frames after :func:`~wmpo.policy.rlds_resize.rlds_resize`."""
    rows = first_frames.repeat_interleave(n_samples, dim=0)
    batch = rows.shape[0]
    seeds = [int(s) for s in np.random.SeedSequence([seed, *state_ids]).generate_state(2 * batch)]
    env_seeds, policy_seeds = seeds[:batch], seeds[batch:]
    policy_generators = [torch.Generator(device=policy.device).manual_seed(s) for s in policy_seeds]
    frame = env.reset(rows, env_seeds)
    prompt = policy.prompts([instruction] * batch)
    frames, responses, log_probs = [], [], []
    videos = [rows[:, None]] if record_videos else None
    num_chunks = torch.zeros(batch, dtype=torch.long)
    done = torch.zeros(batch, dtype=torch.bool)
    token_begin = policy.action_tokenizer.token_begin
    while any_true(not bool(done.all())):
        active = (~done).nonzero().flatten().tolist()
        if not active:
            policy.idle_forward()  # other ranks are still imagining
            continue
        seen = policy_view(frame[active], policy.image_size, jpeg_resize)
        out = policy.predict(
            seen, [instruction] * len(active), do_sample=True, temperature=temperature,
            generator=[policy_generators[i] for i in active],
        )
        chunk_frames = torch.zeros((batch, *seen.shape[1:]), dtype=torch.uint8)
        chunk_frames[active] = seen.cpu()
        chunk_tokens = torch.full((batch, NUM_ACTION_TOKENS), token_begin, dtype=torch.long)
        chunk_tokens[active] = out.responses.cpu()
        chunk_log_probs = torch.zeros(batch, NUM_ACTION_TOKENS)
        chunk_log_probs[active] = out.log_probs.float().cpu()
        actions = torch.zeros(batch, *out.normalized_actions.shape[1:])
        actions[active] = out.normalized_actions.float().cpu()
        step = env.step(actions)
        frames.append(chunk_frames)
        responses.append(chunk_tokens)
        log_probs.append(chunk_log_probs)
        num_chunks[active] += 1
        if record_videos:
            videos.append(step.frames)
        frame = torch.where(step.done[:, None, None, None], frame, env.last_frames)
        done = step.done
    return new_trajectories(
        frames=torch.stack(frames, dim=1),
        input_ids=prompt["input_ids"].cpu(),
        attention_mask=prompt["attention_mask"].cpu(),
        responses=torch.stack(responses, dim=1),
        old_log_probs=torch.cat(log_probs, dim=1),
        num_chunks=num_chunks,
        complete=step.success.clone(),
        finish_step=step.finish_step.clone(),
        group=torch.tensor(group_ids).repeat_interleave(n_samples),
        state_id=torch.tensor(state_ids).repeat_interleave(n_samples),
        videos=torch.cat(videos, dim=1) if record_videos else None,
        frame_scores=_frame_scores(env, 1 + len(frames) * env.wm.spec.chunk) if record_videos else None,
    )


def policy_view(frames: torch.Tensor, size: int, jpeg_resize: bool) -> torch.Tensor:
    """The frames (B, H, W, 3) as the policy receives them in imagination."""
    return rlds_resize(frames, size) if jpeg_resize else frames


def _frame_scores(env: ImaginedEnv, length: int) -> torch.Tensor:
    scores = torch.full((len(env.scorer.window_scores), length), float("nan"))
    for row, windows in enumerate(env.scorer.window_scores):
        for frame, score in windows.items():
            scores[row, frame] = score
    return scores
