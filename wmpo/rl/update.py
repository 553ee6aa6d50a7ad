"""One GRPO policy update over a batch of trajectories.

Mini-batches of ``ppo_mini_batch_size`` trajectories, one optimizer step each (in order, no shuffling). A
trajectory's chunks are processed in slices of ``traj_mini_batch_size`` chunks, each slice's loss weighted by its
share of the trajectory's valid tokens, so the gradient equals that of the trajectory's token-mean loss while only
one slice's activations are alive at a time. The mini-batch loss is the mean over its trajectories.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wmpo.distributed.collectives import global_max, global_sum, world_size
from wmpo.policy.modeling import NUM_ACTION_TOKENS
from wmpo.policy.policy import VLAPolicy
from wmpo.policy.processing import preprocess_images
from wmpo.rl.grpo import policy_loss, valid_token_mask
from wmpo.rollout.trajectories import Trajectories


@dataclass
class UpdateConfig:
    temperature: float | None = None
    """Temperature of the log-probabilities; None = the rollout temperature (the trainer fills it in)."""
    clip_ratio_low: float = 0.2
    """Lower clip: ratios below 1 − low are clipped."""
    clip_ratio_high: float = 0.28
    """Upper clip: ratios above 1 + high are clipped."""
    entropy_coeff: float = 0.0
    """Weight of the entropy bonus (0 = off, as released)."""
    ppo_mini_batch_size: int = 128
    """Trajectories per optimizer step."""
    traj_mini_batch_size: int | None = None
    """Chunks per forward/backward slice of a trajectory; None = the task's released value."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""


def slice_inputs(policy: VLAPolicy, batch: Trajectories, row: int, chunks: slice) -> dict[str, torch.Tensor]:
    """Policy inputs of some chunks of one trajectory, recomputed from the stored frames."""
    frames = batch.frames[row, chunks]
    count = frames.shape[0]
    return {
        "pixel_values": preprocess_images(frames, policy.image_size, device=policy.device),
        "input_ids": batch.input_ids[row : row + 1].expand(count, -1).to(policy.device),
        "attention_mask": batch.attention_mask[row : row + 1].expand(count, -1).to(policy.device),
    }


def chunk_slices(batch: Trajectories, rows: list[int], step: int | None) -> list[tuple[int, slice, int, int]]:
    """(row, chunk range, valid tokens in the range, valid tokens of the row) for every slice with work."""
    work = []
    for row in rows:
        chunks_total = int(batch.num_chunks[row])
        mask = valid_token_mask(batch.finish_step[row : row + 1], chunks_total * NUM_ACTION_TOKENS)
        total = int(mask.sum())
        width = step or chunks_total
        for first in range(0, chunks_total, width):
            chunks = slice(first, min(first + width, chunks_total))
            valid = int(mask[:, chunks.start * NUM_ACTION_TOKENS : chunks.stop * NUM_ACTION_TOKENS].sum())
            if valid:
                work.append((row, chunks, valid, total))
    return work


def idle_pass(policy: VLAPolicy, temperature: float, autocast) -> None:
    """A zero-weight forward/backward for a rank with no (more) work in this mini-batch."""
    inputs, responses = policy.idle_inputs()
    with autocast:
        log_probs, _ = policy.log_probs(inputs, responses, temperature=temperature)
    (log_probs.float().sum() * 0.0).backward()


def clipped_step(params: list[torch.nn.Parameter], optimizer: torch.optim.Optimizer, grad_clip: float,
                 where: str) -> float:
    """Clip the global gradient norm and step; a non-finite norm raises before the step, so the parameters and the
    checkpoints on disk stay the last good ones. Returns the norm before clipping."""
    grad_norm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
    grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
    if not math.isfinite(grad_norm):
        optimizer.zero_grad(set_to_none=True)
        raise FloatingPointError(f"non-finite policy gradient norm ({grad_norm}) in {where}; the parameters were not "
                                 "updated")
    optimizer.step()
    return grad_norm


def update_policy(
    policy: VLAPolicy,
    optimizer: torch.optim.Optimizer,
    batch: Trajectories,
    cfg: UpdateConfig,
    autocast=None,
) -> dict[str, float]:
    """Run the mini-batch optimizer steps over ``batch`` (with its ``advantages`` set); returns averaged metrics.

    Under data parallelism each rank holds its share of the trajectories; a global mini-batch is
    ``ppo_mini_batch_size`` trajectories over all ranks. Ranks run the same number of forward/backward passes (idle
    ranks run a zero-weight placeholder pass) because sharded parameters are gathered collectively.
    """
    from contextlib import nullcontext

    if batch.advantages is None:
        raise ValueError("update_policy needs batch.advantages (the GRPO advantage of each trajectory)")
    if cfg.temperature is None:
        raise ValueError("update_policy needs cfg.temperature (the rollout temperature)")
    autocast = autocast or nullcontext()
    world = world_size()
    model = policy.model
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    totals = {"pg_loss": 0.0, "clip_tokens": 0.0, "kl_tokens": 0.0, "entropy_tokens": 0.0, "tokens": 0.0}
    grad_norms = []
    local_batch = max(1, cfg.ppo_mini_batch_size // world)
    steps = global_max(-(-len(batch) // local_batch))
    for index in range(steps):
        rows = list(range(index * local_batch, min((index + 1) * local_batch, len(batch))))
        trajectories = global_sum(len(rows))
        work = chunk_slices(batch, rows, cfg.traj_mini_batch_size)
        passes = global_max(len(work))
        optimizer.zero_grad(set_to_none=True)
        for number in range(passes):
            if number >= len(work):
                idle_pass(policy, cfg.temperature, autocast)
                continue
            row, chunks, valid, total = work[number]
            tokens = slice(chunks.start * NUM_ACTION_TOKENS, chunks.stop * NUM_ACTION_TOKENS)
            with autocast:
                log_probs, entropy = policy.log_probs(
                    slice_inputs(policy, batch, row, chunks),
                    batch.responses[row, chunks].to(policy.device),
                    temperature=cfg.temperature,
                )
            log_probs, entropy = log_probs.reshape(1, -1).float(), entropy.reshape(1, -1).float()
            mask = valid_token_mask(batch.finish_step[row : row + 1], tokens.stop)[:, tokens].to(policy.device)
            old = batch.old_log_probs[row : row + 1, tokens].to(policy.device)
            out = policy_loss(
                log_probs, old, batch.advantages[row : row + 1].to(policy.device), mask,
                cfg.clip_ratio_low, cfg.clip_ratio_high, entropy=entropy, entropy_coeff=cfg.entropy_coeff,
            )
            # Token mean of the trajectory (share of its valid tokens), mean over the global mini-batch
            # (gradients are averaged over the ranks).
            weight = valid / total * world / trajectories
            (out.loss * weight).backward()
            totals["pg_loss"] += out.pg_loss * valid / total / trajectories
            totals["clip_tokens"] += out.clip_fraction * valid
            totals["kl_tokens"] += out.approx_kl * valid
            totals["entropy_tokens"] += out.entropy * valid
            totals["tokens"] += valid
        grad_norms.append(clipped_step(params, optimizer, cfg.grad_clip, f"mini-batch {index}"))
    optimizer.zero_grad(set_to_none=True)  # gradients would otherwise hold a model's worth of memory until next time
    totals = {key: global_sum(value) for key, value in totals.items()}
    count = max(1, len(grad_norms))
    tokens = max(1.0, totals["tokens"])
    return {
        "actor/pg_loss": totals["pg_loss"] / count,
        "actor/pg_clipfrac": totals["clip_tokens"] / tokens,
        "actor/ppo_kl": totals["kl_tokens"] / tokens,
        "actor/entropy": totals["entropy_tokens"] / tokens,
        "actor/grad_norm": sum(grad_norms) / count,
        "actor/optimizer_steps": len(grad_norms),
    }
