"""The record of a batch of rollouts, imagined or simulated: everything needed to recompute log-probabilities later,
kept compactly (the uint8 frame the policy saw at each chunk, the prompt ids, the sampled action tokens)."""

from __future__ import annotations

import dataclasses

import torch
from tensordict import tensorclass


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
