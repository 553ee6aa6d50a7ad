"""Trajectory-level DPO math (pure functions, no I/O).

A preference pair is a successful trajectory w and a failed trajectory l. With log π(τ) the sum of the executed action
tokens' log-probs over a trajectory's chunks and π_ref the frozen base policy, the implicit reward of τ is
r(τ) = β·(log π(τ) − log π_ref(τ)) and the loss of a pair is −log σ(r(w) − r(l)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


def preference_pairs(state_ids: np.ndarray, complete: np.ndarray, seed: int,
                     cross_state: bool = True) -> list[tuple[int, int]]:
    """(winner row, loser row) pairs of a set of trajectories.

    Every state with both outcomes pairs each of its successes with each of its failures. With ``cross_state``, the
    successes and failures of the states with a single outcome are matched across states (seeded shuffles, the
    shorter list cycled so that each of the longer list's trajectories is in exactly one pair): a budget of one
    trajectory per initial state has no same-state pair at all.
    """
    state_ids, complete = np.asarray(state_ids), np.asarray(complete, dtype=bool)
    pairs, lone_wins, lone_losses = [], [], []
    for state in np.unique(state_ids):
        rows = np.flatnonzero(state_ids == state)
        wins, losses = rows[complete[rows]], rows[~complete[rows]]
        if len(wins) and len(losses):
            pairs += [(int(w), int(l)) for w in wins for l in losses]
        else:
            lone_wins += wins.tolist()
            lone_losses += losses.tolist()
    if cross_state and lone_wins and lone_losses:
        rng = np.random.default_rng(seed)
        wins, losses = rng.permutation(lone_wins), rng.permutation(lone_losses)
        count = max(len(wins), len(losses))
        pairs += [(int(wins[i % len(wins)]), int(losses[i % len(losses)])) for i in range(count)]
    return pairs


@dataclass
class DPOTerms:
    loss: torch.Tensor
    """(P,) −log σ(β·Δ) per pair."""
    margin_grad: torch.Tensor
    """(P,) d loss / d Δ = −β·σ(−β·Δ): the weight of a pair's log-prob sums in the gradient."""
    chosen_reward: torch.Tensor
    """(P,) β·(log π(w) − log π_ref(w))."""
    rejected_reward: torch.Tensor
    """(P,) β·(log π(l) − log π_ref(l))."""


def dpo_terms(chosen: torch.Tensor, chosen_ref: torch.Tensor, rejected: torch.Tensor, rejected_ref: torch.Tensor,
              beta: float) -> DPOTerms:
    """Per-pair loss and gradient weight from trajectory log-prob sums (all (P,))."""
    chosen_reward = beta * (chosen.double() - chosen_ref.double())
    rejected_reward = beta * (rejected.double() - rejected_ref.double())
    logits = chosen_reward - rejected_reward
    return DPOTerms(-F.logsigmoid(logits), -beta * torch.sigmoid(-logits), chosen_reward, rejected_reward)
