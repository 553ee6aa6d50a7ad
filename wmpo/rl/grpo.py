"""GRPO math on action tokens (pure tensor functions, no I/O).

A trajectory of C chunks has C·56 action tokens (8 actions × 7 dimensions per chunk). Tokens at index
< finish_step·7 were executed and are trained; the reward 5·complete sits on the last executed token; the GRPO
advantage of a trajectory is its score normalized within its group (the n_samples rollouts of one initial state).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

ACTION_DIM = 7
REWARD_SCALE = 5.0


def valid_token_mask(finish_step: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(N, num_tokens) bool: token index < finish_step·7."""
    index = torch.arange(num_tokens, device=finish_step.device)
    return index[None, :] < (finish_step.long() * ACTION_DIM)[:, None]


def token_level_rewards(complete: torch.Tensor, finish_step: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """(N, num_tokens) float: 5·complete on token finish_step·7 − 1, zero elsewhere."""
    rewards = torch.zeros(complete.shape[0], num_tokens, device=complete.device)
    last = (finish_step.long() * ACTION_DIM - 1).clamp(0, num_tokens - 1)
    rewards[torch.arange(complete.shape[0]), last] = REWARD_SCALE * complete.float()
    return rewards


def grpo_advantages(scores: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """(score − group mean) / (unbiased group std + eps); a group of one uses mean 0 and std 1."""
    advantages = torch.empty_like(scores, dtype=torch.float32)
    for group in torch.unique(group_ids):
        members = group_ids == group
        values = scores[members].float()
        if values.numel() == 1:
            mean, std = torch.tensor(0.0), torch.tensor(1.0)
        else:
            mean, std = values.mean(), values.std(unbiased=True)
        advantages[members] = (values - mean) / (std + eps)
    return advantages


def masked_token_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(N,) mean over each row's valid tokens; a row without valid tokens gives 0 (its plain masked sum)."""
    mask = mask.to(values.dtype)
    count = mask.sum(dim=-1)
    total = (values * mask).sum(dim=-1)
    return torch.where(count > 0, total / count.clamp_min(1), total)


@dataclass
class LossOutput:
    loss: torch.Tensor
    """Scalar: mean over trajectories of the per-trajectory token-mean loss (plus the optional terms)."""
    pg_loss: float
    clip_fraction: float
    approx_kl: float
    entropy: float


def policy_loss(
    log_probs: torch.Tensor,
    old_log_probs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_ratio_low: float = 0.2,
    clip_ratio_high: float = 0.28,
    entropy: torch.Tensor | None = None,
    entropy_coeff: float = 0.0,
    ref_log_probs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
) -> LossOutput:
    """Clipped per-token surrogate: max(−A·ρ, −A·clip(ρ, 1−low, 1+high)), ρ = exp(log π − log π_old).

    ``advantages`` is (N,) per trajectory, broadcast over its tokens; all (N, T) tensors share ``mask``.
    """
    adv = advantages[:, None].to(log_probs.dtype)
    ratio = torch.exp(log_probs - old_log_probs)
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_ratio_low, 1.0 + clip_ratio_high)
    per_token = torch.maximum(unclipped, clipped)
    pg = masked_token_mean(per_token, mask).mean()
    loss = pg
    entropy_value = 0.0
    if entropy is not None:
        entropy_mean = masked_token_mean(entropy, mask).mean()
        entropy_value = float(entropy_mean.detach())
        if entropy_coeff:
            loss = loss - entropy_coeff * entropy_mean
    if ref_log_probs is not None and kl_coef:
        delta = ref_log_probs - log_probs
        kl = torch.exp(delta) - delta - 1.0  # low-variance estimator of KL(π ‖ π_ref)
        loss = loss + kl_coef * masked_token_mean(kl, mask).mean()
    valid = mask.to(log_probs.dtype)
    denominator = valid.sum().clamp_min(1)
    clip_fraction = float(((clipped > unclipped).to(valid.dtype) * valid).sum() / denominator)
    approx_kl = float(((old_log_probs - log_probs).detach() * valid).sum() / denominator)
    return LossOutput(loss, float(pg.detach()), clip_fraction, approx_kl, entropy_value)


def group_success_rates(complete: torch.Tensor, group_ids: torch.Tensor) -> dict[int, float]:
    return {int(g): float(complete[group_ids == g].float().mean()) for g in torch.unique(group_ids)}


def informative_groups(complete: torch.Tensor, group_ids: torch.Tensor, lower: float, upper: float) -> list[int]:
    """Groups whose success rate lies in [lower, upper] (mixed outcomes: a nonzero advantage signal)."""
    return [g for g, rate in group_success_rates(complete, group_ids).items() if lower <= rate <= upper]
