"""Action tokens ↔ normalized actions ↔ environment actions (OpenVLA discretization, BOUNDS_Q99 normalization).

Action tokens are the last ``n_bins`` ids of the base vocabulary, the highest id being the lowest bin. A token maps to
the center of its bin among ``n_bins`` uniform bin edges on [-1, 1] (so ``n_bins - 1`` centers, the index clipped into
range); un-normalization maps [-1, 1] back to [q01, q99] on the dimensions whose mask is true.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from opensora.errors import UserError
from wmpo.policy.modeling import ACTION_DIM


class UnknownUnnormKeyError(UserError, KeyError):
    """The requested action statistics are not in the checkpoint's norm_stats."""

    def __str__(self) -> str:
        return str(self.args[0])


class ActionTokenizer:
    """Converts between action token ids and normalized action values."""

    def __init__(self, vocab_size: int, n_bins: int = 256) -> None:
        self.vocab_size = vocab_size
        self.n_bins = n_bins
        self.token_begin = vocab_size - n_bins
        edges = torch.linspace(-1.0, 1.0, n_bins, dtype=torch.float64)
        self.bin_centers = (edges[:-1] + edges[1:]) / 2.0

    def tokens_to_normalized(self, token_ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Token ids → normalized values in [-1, 1] (same shape)."""
        index = (self.vocab_size - token_ids.long() - 1).clamp(0, self.n_bins - 2)
        return self.bin_centers.to(token_ids.device)[index].to(dtype)

    def normalized_to_tokens(self, values: torch.Tensor) -> torch.Tensor:
        """Normalized values → token ids, the exact inverse of :meth:`tokens_to_normalized` on the bin centers.

        OpenVLA's ``np.digitize`` over the ``n_bins`` edges: a value in [edge i−1, edge i) gets bin i (1 … n_bins,
        values are clipped to [-1, 1] first) and token ``vocab_size − bin``.
        """
        edges = torch.linspace(-1.0, 1.0, self.n_bins, dtype=torch.float64, device=values.device)
        bins = torch.bucketize(values.double().clamp(-1.0, 1.0), edges, right=True)
        return self.vocab_size - bins.clamp(1, self.n_bins)

    def slot_to_token(self, slot: torch.Tensor) -> torch.Tensor:
        """Index among the ``n_bins`` action logits → token id."""
        return slot.long() + self.token_begin

    def token_to_slot(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token id → index among the ``n_bins`` action logits; fails on a token that is not an action token."""
        slot = token_ids.long() - self.token_begin
        if bool(((slot < 0) | (slot >= self.n_bins)).any()):
            raise ValueError(
                f"responses contain ids outside the action tokens [{self.token_begin}, {self.vocab_size})"
            )
        return slot


def action_stats(norm_stats: dict[str, Any], unnorm_key: str) -> dict[str, np.ndarray]:
    """``norm_stats[unnorm_key]["action"]`` as arrays; an unknown key fails listing the available ones."""
    if unnorm_key not in norm_stats:
        available = ", ".join(sorted(norm_stats)) or "(none: the checkpoint has no norm_stats)"
        raise UnknownUnnormKeyError(f"unnorm_key {unnorm_key!r} not in the policy's norm_stats; available: {available}")
    stats = norm_stats[unnorm_key]["action"]
    q01 = np.asarray(stats["q01"], dtype=np.float64)
    result = {
        "q01": q01,
        "q99": np.asarray(stats["q99"], dtype=np.float64),
        "mask": np.asarray(stats.get("mask", np.ones_like(q01, dtype=bool)), dtype=bool),
    }
    for name, values in result.items():
        if values.shape != (ACTION_DIM,):
            raise ValueError(f"norm_stats[{unnorm_key!r}].action.{name} has {values.size} values, "
                             f"expected {ACTION_DIM}")
        if not np.isfinite(values).all():
            raise ValueError(f"norm_stats[{unnorm_key!r}].action.{name} is not finite: {values.tolist()}")
    return result


def normalize_actions(actions: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """BOUNDS_Q99: ``clip(2·(a−q01)/(q99−q01+1e-8) − 1, −1, 1)`` where the mask is true, ``a`` elsewhere (the gripper,
    already in [−1, 1])."""
    actions = np.asarray(actions, dtype=np.float64)
    low, high, mask = stats["q01"], stats["q99"], stats["mask"]
    scaled = np.clip(2.0 * (actions - low) / (high - low + 1e-8) - 1.0, -1.0, 1.0)
    return np.where(mask, scaled, actions)


def unnormalize_actions(normalized: np.ndarray, stats: dict[str, np.ndarray]) -> np.ndarray:
    """BOUNDS_Q99 inverse: ``0.5·(x+1)·(q99−q01+1e-8)+q01`` where the mask is true, ``x`` elsewhere."""
    normalized = np.asarray(normalized, dtype=np.float64)
    low, high, mask = stats["q01"], stats["q99"], stats["mask"]
    scaled = 0.5 * (normalized + 1.0) * (high - low + 1e-8) + low
    return np.where(mask, scaled, normalized)


def action_tokens(actions: np.ndarray, stats: dict[str, np.ndarray], tokenizer: ActionTokenizer) -> torch.Tensor:
    """Environment actions (B, chunk, 7) → token ids (B, chunk·7): the inverse of the decoding path on its outputs."""
    normalized = torch.from_numpy(normalize_actions(actions, stats)).reshape(len(actions), -1)
    return tokenizer.normalized_to_tokens(normalized)
