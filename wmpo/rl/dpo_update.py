"""DPO policy updates over preference pairs of real trajectories.

The loss of a pair is not linear in its trajectories' log-prob sums, so a mini-batch takes two passes over the chunk
slices (``traj_mini_batch_size`` chunks each, as in the GRPO update): one without gradients for the sums, then one
that backpropagates each slice's masked log-prob sum weighted by its pair's dL/dΔ. The gradient equals that of the
mean pair loss while only one slice's activations are alive at a time.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from wmpo.distributed.collectives import global_max, global_sum, world_size
from wmpo.policy.modeling import NUM_ACTION_TOKENS
from wmpo.policy.policy import VLAPolicy
from wmpo.rl.dpo import dpo_terms
from wmpo.rl.grpo import valid_token_mask
from wmpo.rl.update import UpdateConfig, chunk_slices, clipped_step, idle_pass, slice_inputs
from wmpo.rollout.trajectories import Trajectories


def _slice_log_probs(policy: VLAPolicy, batch: Trajectories, row: int, chunks: slice, temperature: float,
                     autocast) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token log-probs (1, tokens) of one slice and its valid-token mask."""
    tokens = slice(chunks.start * NUM_ACTION_TOKENS, chunks.stop * NUM_ACTION_TOKENS)
    with autocast:
        log_probs, _ = policy.log_probs(slice_inputs(policy, batch, row, chunks),
                                        batch.responses[row, chunks].to(policy.device), temperature=temperature)
    mask = valid_token_mask(batch.finish_step[row : row + 1], tokens.stop)[:, tokens].to(policy.device)
    return log_probs.reshape(1, -1).float(), mask


@torch.no_grad()
def sequence_log_probs(policy: VLAPolicy, batch: Trajectories, temperature: float, step: int | None,
                       autocast=None) -> torch.Tensor:
    """(B,) float64: each trajectory's sum of executed-token log-probs at ``temperature``.

    Collective under data parallelism: every rank runs as many forwards as the busiest one.
    """
    autocast = autocast or nullcontext()
    sums = torch.zeros(len(batch), dtype=torch.float64)
    work = chunk_slices(batch, list(range(len(batch))), step)
    for number in range(global_max(len(work))):
        if number >= len(work):
            policy.idle_forward()
            continue
        row, chunks, _, _ = work[number]
        log_probs, mask = _slice_log_probs(policy, batch, row, chunks, temperature, autocast)
        sums[row] += float((log_probs.double() * mask).sum())
    return sums


def update_dpo(
    policy: VLAPolicy,
    optimizer: torch.optim.Optimizer,
    chosen: Trajectories,
    rejected: Trajectories,
    chosen_ref: torch.Tensor,
    rejected_ref: torch.Tensor,
    cfg: UpdateConfig,
    beta: float,
    autocast=None,
) -> dict[str, float]:
    """Optimizer steps over pairs (row i of ``chosen`` preferred to row i of ``rejected``), ``ppo_mini_batch_size``
    pairs per step over all ranks; ``*_ref`` are the reference policy's log-prob sums. Returns averaged metrics."""
    if cfg.temperature is None:
        raise ValueError("update_dpo needs cfg.temperature")
    if not len(chosen) == len(rejected) == len(chosen_ref) == len(rejected_ref):
        raise ValueError(f"{len(chosen)} chosen, {len(rejected)} rejected trajectories, {len(chosen_ref)} and "
                         f"{len(rejected_ref)} reference sums: one of each per pair")
    autocast = autocast or nullcontext()
    world = world_size()
    policy.model.train()
    params = [p for p in policy.model.parameters() if p.requires_grad]
    totals = {"loss": 0.0, "margin": 0.0, "accuracy": 0.0, "chosen": 0.0, "rejected": 0.0, "pairs": 0.0}
    grad_norms = []
    local_batch = max(1, cfg.ppo_mini_batch_size // world)
    for index in range(global_max(-(-len(chosen) // local_batch))):
        rows = slice(index * local_batch, min((index + 1) * local_batch, len(chosen)))
        part_w, part_l = chosen[rows], rejected[rows]
        pairs = global_sum(len(part_w))
        terms = dpo_terms(sequence_log_probs(policy, part_w, cfg.temperature, cfg.traj_mini_batch_size, autocast),
                          chosen_ref[rows],
                          sequence_log_probs(policy, part_l, cfg.temperature, cfg.traj_mini_batch_size, autocast),
                          rejected_ref[rows], beta)
        # Gradients are averaged over the ranks: scale by the world size to get the global mini-batch mean.
        weights = terms.margin_grad * world / max(1, pairs)
        work = [(part_w, row, chunks, float(weights[row])) for row, chunks, _, _
                in chunk_slices(part_w, list(range(len(part_w))), cfg.traj_mini_batch_size)]
        work += [(part_l, row, chunks, -float(weights[row])) for row, chunks, _, _
                 in chunk_slices(part_l, list(range(len(part_l))), cfg.traj_mini_batch_size)]
        optimizer.zero_grad(set_to_none=True)
        for number in range(global_max(len(work))):
            if number >= len(work):
                idle_pass(policy, cfg.temperature, autocast)
                continue
            batch, row, chunks, weight = work[number]
            log_probs, mask = _slice_log_probs(policy, batch, row, chunks, cfg.temperature, autocast)
            ((log_probs * mask).sum() * weight).backward()
        grad_norms.append(clipped_step(params, optimizer, cfg.grad_clip, f"DPO mini-batch {index}"))
        margin = terms.chosen_reward - terms.rejected_reward
        totals["loss"] += float(terms.loss.sum())
        totals["margin"] += float(margin.sum())
        totals["accuracy"] += float((margin > 0).sum())
        totals["chosen"] += float(terms.chosen_reward.sum())
        totals["rejected"] += float(terms.rejected_reward.sum())
        totals["pairs"] += len(part_w)
    optimizer.zero_grad(set_to_none=True)
    totals = {key: global_sum(value) for key, value in totals.items()}
    pairs = max(1.0, totals.pop("pairs"))
    count = max(1, len(grad_norms))
    return {
        "dpo/loss": totals["loss"] / pairs,
        "dpo/reward_margin": totals["margin"] / pairs,
        "dpo/preference_accuracy": totals["accuracy"] / pairs,
        "dpo/chosen_reward": totals["chosen"] / pairs,
        "dpo/rejected_reward": totals["rejected"] / pairs,
        "actor/grad_norm": sum(grad_norms) / count,
        "actor/optimizer_steps": len(grad_norms),
    }
