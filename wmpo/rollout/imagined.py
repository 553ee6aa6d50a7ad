"""Imagined rollouts of whole groups: the policy and the imagined environment alternate chunk by chunk."""

from __future__ import annotations

import numpy as np
import torch

from wmpo.distributed.collectives import any_true
from wmpo.imagination import ImaginedEnv
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
    slots: int = 0,
) -> Trajectories:
    """Roll ``n_samples`` trajectories from each first frame (G, H, W, 3) until each finishes; with ``jpeg_resize``
    the policy sees (and the trajectories keep) its frames after :func:`~wmpo.policy.rlds_resize.rlds_resize`.

    At most ``slots`` trajectories (0: all) are generated together. A slot freed by a trajectory that finished is
    refilled with the next trajectory not yet started, so the batch stays full until the round runs out
    (continuous batching). Every trajectory has its own generators, so ``slots`` changes it only through the float
    rounding of another batch composition."""
    rows = first_frames.repeat_interleave(n_samples, dim=0)
    batch = rows.shape[0]
    seeds = [int(s) for s in np.random.SeedSequence([seed, *state_ids]).generate_state(2 * batch)]
    env_seeds, policy_seeds = seeds[:batch], seeds[batch:]
    policy_generators = [torch.Generator(device=policy.device).manual_seed(s) for s in policy_seeds]
    frame = env.reset(rows, env_seeds)
    prompt = policy.prompts([instruction] * batch)
    seen_frames, tokens, log_probs = ([[] for _ in range(batch)] for _ in range(3))
    videos = [[rows[row, None]] for row in range(batch)] if record_videos else None
    pending, running = list(range(batch)), []
    slots = slots or batch
    while any_true(bool(pending or running)):
        free = slots - len(running)
        running, pending = running + pending[:free], pending[free:]
        if not running:
            policy.idle_forward()  # other ranks are still imagining
            continue
        seen = policy_view(frame[running], policy.image_size, jpeg_resize)
        out = policy.predict(
            seen, [instruction] * len(running), do_sample=True, temperature=temperature,
            generator=[policy_generators[i] for i in running],
        )
        actions = torch.zeros(batch, *out.normalized_actions.shape[1:])
        actions[running] = out.normalized_actions.float().cpu()
        step = env.step(actions, rows=running)
        seen, responses, chunk_log_probs = seen.cpu(), out.responses.cpu(), out.log_probs.float().cpu()
        for k, row in enumerate(running):
            seen_frames[row].append(seen[k : k + 1])
            tokens[row].append(responses[k : k + 1])
            log_probs[row].append(chunk_log_probs[k : k + 1])
            if record_videos:
                videos[row].append(step.frames[row])
        frame = torch.where(step.done[:, None, None, None], frame, env.last_frames)
        running = [row for row in running if not step.done[row]]
    num_chunks = torch.tensor([len(row_tokens) for row_tokens in tokens], dtype=torch.long)
    chunks = int(num_chunks.max())
    return new_trajectories(
        frames=_padded(seen_frames, chunks, 0),
        input_ids=prompt["input_ids"].cpu(),
        attention_mask=prompt["attention_mask"].cpu(),
        responses=_padded(tokens, chunks, policy.action_tokenizer.token_begin),
        old_log_probs=_padded(log_probs, chunks, 0).flatten(1),
        num_chunks=num_chunks,
        complete=step.success.clone(),
        finish_step=step.finish_step.clone(),
        group=torch.tensor(group_ids).repeat_interleave(n_samples),
        state_id=torch.tensor(state_ids).repeat_interleave(n_samples),
        videos=_padded(videos, 1 + chunks * env.wm.spec.chunk, 0) if record_videos else None,
        frame_scores=_frame_scores(env, 1 + chunks * env.wm.spec.chunk) if record_videos else None,
    )


def _padded(per_row: list[list[torch.Tensor]], length: int, fill) -> torch.Tensor:
    """(B, length, ...) from each row's pieces joined along their first dimension, padded with ``fill`` after the
    row's own length."""
    rows = [torch.cat(pieces) for pieces in per_row]
    out = torch.full((len(rows), length, *rows[0].shape[1:]), fill, dtype=rows[0].dtype)
    for index, row in enumerate(rows):
        out[index, : len(row)] = row
    return out


def policy_view(frames: torch.Tensor, size: int, jpeg_resize: bool) -> torch.Tensor:
    """The frames (B, H, W, 3) as the policy receives them in imagination."""
    return rlds_resize(frames, size) if jpeg_resize else frames


def _frame_scores(env: ImaginedEnv, length: int) -> torch.Tensor:
    scores = torch.full((len(env.scorer.window_scores), length), float("nan"))
    for row, windows in enumerate(env.scorer.window_scores):
        for frame, score in windows.items():
            scores[row, frame] = score
    return scores
