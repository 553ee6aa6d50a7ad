"""Imagined rollouts of whole groups: the policy and the imagined environment alternate chunk by chunk.

Everything needed to recompute log-probabilities later is kept compactly: the uint8 frame the policy saw at each
chunk (pixel values are recomputed from it), the prompt ids, and the sampled action tokens.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from tensordict import tensorclass

from wmpo.distributed.collectives import any_true
from wmpo.imagination import ImaginedEnv
from wmpo.policy.modeling import NUM_ACTION_TOKENS
from wmpo.policy.policy import VLAPolicy
from wmpo.policy.rlds_resize import rlds_resize


@tensorclass
class Trajectories:
    """B trajectories: a TensorDict (batch size [B]) with typed fields, so indexing and slicing work on whole
    batches and Ray moves them as one object; ``concat_trajectories`` joins batches of different lengths."""

    frames: torch.Tensor
    """(B, C, H, W, 3) uint8: the frame the policy saw before each chunk (zeros after the trajectory ended)."""
    input_ids: torch.Tensor
    """(B, L) prompt ids."""
    attention_mask: torch.Tensor
    """(B, L) prompt mask."""
    responses: torch.Tensor
    """(B, C, 56) action token ids (the first action token for chunks never generated)."""
    old_log_probs: torch.Tensor
    """(B, C·56) log-probs of the tokens at the rollout temperature (0 for chunks never generated)."""
    num_chunks: torch.Tensor
    """(B,) chunks actually generated."""
    complete: torch.Tensor
    """(B,) bool."""
    finish_step: torch.Tensor
    """(B,) int64."""
    group: torch.Tensor
    """(B,) int64 group id (one initial state in one generation round)."""
    state_id: torch.Tensor
    """(B,) int64."""
    advantages: torch.Tensor | None = None
    """(B,) GRPO advantage, set by the trainer before the update."""
    videos: torch.Tensor | None = None
    """(B, T, H, W, 3) uint8 imagined videos, when recorded."""
    frame_scores: torch.Tensor | None = None
    """(B, T) reward-model score of the window ending at each frame (NaN where none was scored), with videos."""


CHUNK_FIELDS = ("frames", "responses", "old_log_probs", "videos", "frame_scores")
"""Fields whose second dimension grows with the trajectory length (padded with zeros when batches are joined)."""
OPTIONAL_FIELDS = ("advantages", "videos", "frame_scores")


def new_trajectories(**fields) -> Trajectories:
    return Trajectories(**fields, batch_size=[int(fields["complete"].shape[0])])


def concat_trajectories(parts: list[Trajectories]) -> Trajectories:
    """Join batches; chunk dimensions are zero-padded to the longest, and an optional field is kept only when
    every part has it."""
    present = {name for name in OPTIONAL_FIELDS if all(getattr(p, name) is not None for p in parts)}
    widths = {
        name: max(getattr(p, name).shape[1] for p in parts)
        for name in CHUNK_FIELDS
        if name not in OPTIONAL_FIELDS or name in present
    }
    padded = []
    for part in parts:
        fields = _fields(part)
        fields.update({name: None for name in OPTIONAL_FIELDS if name not in present})
        fields.update({name: _pad_dim1(fields[name], width) for name, width in widths.items()})
        padded.append(new_trajectories(**fields))
    return torch.cat(padded)


def split_off_videos(batch: Trajectories) -> tuple[Trajectories, Trajectories | None]:
    """The batch without videos, and the same rows with their videos (None when none were recorded): videos are
    only for logging and stay out of the update batch."""
    if batch.videos is None:
        return batch, None
    return new_trajectories(**{**_fields(batch), "videos": None, "frame_scores": None}), batch


def _fields(batch: Trajectories) -> dict:
    return {f.name: getattr(batch, f.name) for f in dataclasses.fields(Trajectories)}


def _pad_dim1(tensor: torch.Tensor, width: int) -> torch.Tensor:
    if tensor.shape[1] == width:
        return tensor
    pad = torch.zeros((tensor.shape[0], width - tensor.shape[1], *tensor.shape[2:]), dtype=tensor.dtype)
    return torch.cat([tensor, pad], dim=1)


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
