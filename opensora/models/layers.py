"""Building blocks of the action-conditioned STDiT3, with the parameter names of the released checkpoints."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation ``x·(1+scale)+shift``."""
    return x * (1 + scale) + shift


class RMSNorm(nn.Module):
    """RMS normalization over the last dimension, computed in fp32 (q/k norm of the attention heads)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding over the whole head dimension, adjacent pairs rotated together.

    ``freqs`` is a stored, non-trainable parameter (it is in the released state dicts); positions and their products
    with the frequencies are computed in its dtype, as the released model did after its bf16 cast.
    """

    def __init__(self, dim: int, theta: float = 10000.0) -> None:
        super().__init__()
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def angles(self, length: int, offset: int = 0) -> torch.Tensor:
        """(length, dim) rotation angles for positions offset..offset+length−1, each repeated for its pair."""
        positions = torch.arange(offset, offset + length, device=self.freqs.device).to(self.freqs.dtype)
        angles = positions[:, None] * self.freqs[None, :]
        return angles.repeat_interleave(2, dim=-1)

    @staticmethod
    def rotate(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """Rotate ``x`` (..., length, dim) by ``angles`` (length, dim)."""
        pairs = x.unflatten(-1, (-1, 2))
        rotated_half = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
        return (x * angles.cos() + rotated_half * angles.sin()).to(x.dtype)


class Attention(nn.Module):
    """Multi-head self-attention with q/k RMSNorm; optional rotary positions and causal masking."""

    def __init__(self, dim: int, num_heads: int, qk_norm: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.q_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.proj = nn.Linear(dim, dim)

    def project(
        self, x: torch.Tensor, angles: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, L, dim) → normalized, rotated q, k and v, each (N, heads, L, head_dim)."""
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, self.head_dim)).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if angles is not None:
            q, k = RotaryEmbedding.rotate(q, angles), RotaryEmbedding.rotate(k, angles)
        return q, k, v

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool, offset: int = 0
    ) -> torch.Tensor:
        """Attention of q (positions offset.., ) over k/v (positions 0..); output (N, L, dim) after ``proj``."""
        if causal and offset:
            allowed = torch.arange(k.shape[-2], device=q.device)[None, :] <= (
                torch.arange(q.shape[-2], device=q.device)[:, None] + offset
            )
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return self.proj(out.transpose(1, 2).flatten(-2))

    def forward(self, x: torch.Tensor, angles: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        q, k, v = self.project(x, angles)
        return self.attend(q, k, v, causal)


class CrossAttention(nn.Module):
    """Text cross-attention of upstream STDiT3. Kept so released checkpoints load strictly; never called."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)


class Mlp(nn.Module):
    """fc1 → GELU (tanh approximation) → fc2."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TimestepEmbedder(nn.Module):
    """Sinusoidal timestep features (cos first, 256 wide) → MLP."""

    def __init__(self, hidden_size: int, frequency_size: int = 256) -> None:
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(nn.Linear(frequency_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size))

    @staticmethod
    def sinusoids(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        dtype = self.mlp[0].weight.dtype
        return self.mlp(self.sinusoids(t, self.frequency_size).to(dtype))


class CaptionEmbedder(nn.Module):
    """Upstream text-embedding projection and null caption. Kept for strict loading; frozen and never called."""

    def __init__(self, in_channels: int, hidden_size: int, token_num: int) -> None:
        super().__init__()
        self.y_proj = Mlp(in_channels, hidden_size, hidden_size)
        self.register_buffer("y_embedding", torch.randn(token_num, in_channels) / in_channels**0.5)


class ActionEncoder(nn.Module):
    """Per-action MLP; ``pad_action_num`` learned none-actions are prepended for the context frames."""

    def __init__(self, action_dim: int, hidden_size: int, pad_action_num: int) -> None:
        super().__init__()
        self.pad_action_num = pad_action_num
        self.fc = nn.Sequential(
            nn.Linear(action_dim, 4 * hidden_size), nn.SiLU(), nn.Linear(4 * hidden_size, hidden_size)
        )
        self.none_action = nn.Embedding(1, hidden_size)

    def forward(self, actions: torch.Tensor, with_padding: bool = True) -> torch.Tensor:
        """(B, Ta, action_dim) → (B, pad+Ta, hidden), or (B, Ta, hidden) without the none-actions."""
        embedded = self.fc(actions)
        if not with_padding:
            return embedded
        pad = self.none_action.weight[None].expand(actions.shape[0], self.pad_action_num, -1)
        return torch.cat([pad, embedded], dim=1)


class PositionEmbedding2D(nn.Module):
    """2-D sin-cos spatial positions; the first half of the channels encodes the column, the second the row."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        half = dim // 2
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, half, 2).float() / half)), persistent=False)

    def _sin_cos(self, coords: torch.Tensor) -> torch.Tensor:
        angles = coords[:, None] * self.inv_freq[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def forward(self, height: int, width: int, scale: float, base_size: int) -> torch.Tensor:
        """(height·width, dim) embedding, row-major over (row, column)."""
        device = self.inv_freq.device
        rows = torch.arange(height, device=device, dtype=torch.float32) / scale * (base_size / height)
        cols = torch.arange(width, device=device, dtype=torch.float32) / scale * (base_size / width)
        row_grid, col_grid = torch.meshgrid(rows, cols, indexing="ij")
        return torch.cat([self._sin_cos(col_grid.reshape(-1)), self._sin_cos(row_grid.reshape(-1))], dim=-1)


class PatchEmbed3D(nn.Module):
    """Non-overlapping (t, h, w) patches → tokens, via a strided Conv3d."""

    def __init__(self, patch_size: tuple[int, int, int], in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv3d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) → (B, T', H'·W', embed_dim)."""
        pt, ph, pw = self.patch_size
        _, _, t, h, w = x.shape
        x = F.pad(x, (0, (-w) % pw, 0, (-h) % ph, 0, (-t) % pt))
        x = self.proj(x)
        return x.flatten(3).permute(0, 2, 3, 1)


class FinalLayer(nn.Module):
    """Non-affine LayerNorm, adaLN shift/scale from the raw timestep embedding, linear to patch pixels."""

    def __init__(self, hidden_size: int, num_patch: int, out_channels: int) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, num_patch * out_channels)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size**0.5)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (B, T, S, C); t (B, T, C) per-frame embedding (timestep or the context timestep)."""
        shift, scale = (self.scale_shift_table[None, None] + t[:, :, None]).unbind(dim=2)
        return self.linear(modulate(self.norm_final(x), shift[:, :, None], scale[:, :, None]))
