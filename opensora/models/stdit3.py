"""Action-conditioned STDiT3: the WMPO world model's diffusion transformer.

Tokens are laid out (B, T, S, C): T latent frames, S = H'·W' patches per frame. Each depth level is a spatial block
(attention among the patches of one frame, adaLN modulated per frame by timestep + action) followed by a temporal
block (causal attention across frames at one patch position, rotary positions, modulated by the timestep only).
Context frames (``x_mask`` False) are modulated everywhere with the fixed context timestep instead.

Because context frames are clean, use a fixed timestep and only attend to earlier frames, their activations do not
depend on the denoising step. ``encode_context`` computes them once and keeps the temporal keys/values;
``forward_targets`` then runs only the target frames at each step. ``forward`` is the plain all-frames path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from opensora.models.layers import (
    ActionEncoder,
    Attention,
    CaptionEmbedder,
    CrossAttention,
    FinalLayer,
    Mlp,
    PatchEmbed3D,
    PositionEmbedding2D,
    RotaryEmbedding,
    TimestepEmbedder,
    modulate,
)


@dataclass
class STDiT3Config:
    """Architecture of the world-model transformer."""

    depth: int = 28
    """Number of spatial/temporal block pairs."""
    hidden_size: int = 1152
    """Token width."""
    num_heads: int = 16
    """Attention heads (head dim = hidden_size / num_heads)."""
    mlp_ratio: float = 4.0
    """MLP width relative to hidden_size."""
    patch_size: tuple[int, int, int] = (1, 2, 2)
    """Latent (t, h, w) patch size."""
    in_channels: int = 4
    """Latent channels (VAE)."""
    pred_sigma: bool = True
    """Output 2·in_channels channels like upstream (only the first half, the velocity, is used)."""
    qk_norm: bool = True
    """RMSNorm on queries and keys."""
    action_dim: int = 7
    """Action vector size."""
    pad_action_num: int = 4
    """Context frames (each gets the learned none-action)."""
    context_timestep: float = 15.0
    """Timestep the context frames are modulated with (and noised to in training)."""
    input_sq_size: int = 512
    """Reference resolution of the spatial position-embedding scale."""
    vae_downsample: int = 8
    """Pixels per latent cell; the position-embedding scale uses the pixel resolution (256 px → 0.5)."""
    caption_channels: int = 4096
    """Width of the unused upstream caption projection (kept for strict loading)."""
    model_max_length: int = 300
    """Token count of the unused null caption buffer."""

    @property
    def out_channels(self) -> int:
        return self.in_channels * 2 if self.pred_sigma else self.in_channels

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, STDiT3Config] = {
    "XL/2": STDiT3Config(),
    "tiny": STDiT3Config(
        depth=2, hidden_size=64, num_heads=4, caption_channels=32, model_max_length=8, vae_downsample=4
    ),
    # The tiny transformer over the exact pixel-shuffle "VAE" (4×4 pixel blocks as 48 channels). One latent cell per
    # token keeps the token wider than its input: a narrower token could not carry the noise it must remove.
    "tiny-pixel": STDiT3Config(
        depth=2,
        hidden_size=64,
        num_heads=4,
        patch_size=(1, 1, 1),
        in_channels=48,
        caption_channels=32,
        model_max_length=8,
        vae_downsample=4,
    ),
    # Over the fitted 8x8-block linear autoencoder (32 channels: fewer lose the colour of small objects): 64 tokens
    # per 64x64 frame leave room for a wider, deeper transformer at the tiny-pixel model's cost per step.
    "small-patch": STDiT3Config(
        depth=4,
        hidden_size=128,
        num_heads=4,
        patch_size=(1, 1, 1),
        in_channels=32,
        caption_channels=32,
        model_max_length=8,
        vae_downsample=8,
    ),
}


def preset(name: str) -> STDiT3Config:
    """A named architecture (``XL/2`` released, ``tiny`` for tests and the CPU quickstart)."""
    if name not in PRESETS:
        raise KeyError(f"unknown world-model preset {name!r}; known presets: {', '.join(PRESETS)}")
    return STDiT3Config(**PRESETS[name].to_dict())


class STDiT3Block(nn.Module):
    """One spatial or temporal transformer block with adaLN-single modulation."""

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float, qk_norm: bool, temporal: bool) -> None:
        super().__init__()
        self.temporal = temporal
        self.norm1 = nn.LayerNorm(hidden_size, eps=1e-6, elementwise_affine=False)
        self.attn = Attention(hidden_size, num_heads, qk_norm=qk_norm)
        self.cross_attn = CrossAttention(hidden_size)
        self.norm2 = nn.LayerNorm(hidden_size, eps=1e-6, elementwise_affine=False)
        self.mlp = Mlp(hidden_size, int(hidden_size * mlp_ratio))
        self.scale_shift_table = nn.Parameter(torch.randn(6, hidden_size) / hidden_size**0.5)

    def modulation(self, cond: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """cond (B, T, 6·C) → six (B, T, 1, C): shift/scale/gate for the attention, then for the MLP."""
        table = self.scale_shift_table[None, None] + cond.unflatten(-1, (6, -1))
        return tuple(part[:, :, None] for part in table.unbind(dim=2))

    def _attention(self, x: torch.Tensor, rope: RotaryEmbedding, cache: dict | None, store: bool) -> torch.Tensor:
        batch, frames, tokens, channels = x.shape
        if not self.temporal:
            return self.attn(x.reshape(batch * frames, tokens, channels)).reshape(x.shape)
        seq = x.transpose(1, 2).reshape(batch * tokens, frames, channels)
        offset = cache["k"].shape[-2] if cache is not None and not store else 0
        q, k, v = self.attn.project(seq, rope.angles(frames, offset))
        if store:
            cache["k"], cache["v"] = k, v
        elif cache is not None:
            k, v = torch.cat([cache["k"], k], dim=-2), torch.cat([cache["v"], v], dim=-2)
        out = self.attn.attend(q, k, v, causal=True, offset=offset)
        return out.reshape(batch, tokens, frames, channels).transpose(1, 2)

    def forward(
        self,
        x: torch.Tensor,
        cond: torch.Tensor,
        rope: RotaryEmbedding,
        cache: dict | None = None,
        store: bool = False,
    ) -> torch.Tensor:
        """x (B, T, S, C); cond (B, T, 6·C) per-frame conditioning (already the context one for context frames).

        Temporal blocks: ``store`` keeps this call's keys/values in ``cache`` (context pass); otherwise a given
        ``cache`` holds earlier frames' keys/values that this call's frames also attend to.
        """
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.modulation(cond)
        h = modulate(self.norm1(x), shift_msa, scale_msa)
        x = x + gate_msa * self._attention(h, rope, cache, store)
        h = modulate(self.norm2(x), shift_mlp, scale_mlp)
        return x + gate_mlp * self.mlp(h)


class STDiT3(nn.Module):
    """The action-conditioned spatial-temporal diffusion transformer (released-checkpoint parameter names)."""

    def __init__(self, config: STDiT3Config) -> None:
        super().__init__()
        self.config = config
        c = config
        self.pos_embed = PositionEmbedding2D(c.hidden_size)
        self.rope = RotaryEmbedding(c.hidden_size // c.num_heads)
        self.x_embedder = PatchEmbed3D(c.patch_size, c.in_channels, c.hidden_size)
        self.t_embedder = TimestepEmbedder(c.hidden_size)
        self.action_embedder = ActionEncoder(c.action_dim, c.hidden_size, c.pad_action_num)
        self.fps_embedder = TimestepEmbedder(c.hidden_size)
        self.t_block = nn.Sequential(nn.SiLU(), nn.Linear(c.hidden_size, 6 * c.hidden_size))
        self.y_embedder = CaptionEmbedder(c.caption_channels, c.hidden_size, c.model_max_length)
        self.spatial_blocks = nn.ModuleList(
            STDiT3Block(c.hidden_size, c.num_heads, c.mlp_ratio, c.qk_norm, temporal=False) for _ in range(c.depth)
        )
        self.temporal_blocks = nn.ModuleList(
            STDiT3Block(c.hidden_size, c.num_heads, c.mlp_ratio, c.qk_norm, temporal=True) for _ in range(c.depth)
        )
        patch_volume = c.patch_size[0] * c.patch_size[1] * c.patch_size[2]
        self.final_layer = FinalLayer(c.hidden_size, patch_volume, c.out_channels)
        self.initialize_weights()
        # Unused upstream modules: frozen so optimizers and DDP ignore them (they get no gradient anyway).
        for module in (self.y_embedder, self.fps_embedder, *(b.cross_attn for b in self.blocks())):
            module.requires_grad_(False)

    def blocks(self) -> list[STDiT3Block]:
        return [*self.spatial_blocks, *self.temporal_blocks]

    def initialize_weights(self) -> None:
        """Xavier linears with zero bias, N(0, 0.02) timestep MLPs, temporal blocks start as the identity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for linear in (self.t_embedder.mlp[0], self.t_embedder.mlp[2], self.t_block[1]):
            nn.init.normal_(linear.weight, std=0.02)
        nn.init.normal_(self.action_embedder.none_action.weight)
        for block in self.temporal_blocks:
            nn.init.zeros_(block.attn.proj.weight)
            nn.init.zeros_(block.mlp.fc2.weight)

    @property
    def dtype(self) -> torch.dtype:
        return self.x_embedder.proj.weight.dtype

    # -- pieces shared by the plain and the cached paths ------------------------------------------------------------

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, T, H, W) → tokens (B, T, S, C) with spatial positions added."""
        tokens = self.x_embedder(x.to(self.dtype))
        height = -(-x.shape[3] // self.config.patch_size[1])
        width = -(-x.shape[4] // self.config.patch_size[2])
        pixels = x.shape[3] * x.shape[4] * self.config.vae_downsample**2
        scale = pixels**0.5 / self.config.input_sq_size
        pos = self.pos_embed(height, width, scale=scale, base_size=round((height * width) ** 0.5))
        return tokens + pos.to(tokens.dtype)

    def _timestep(self, timestep: torch.Tensor) -> torch.Tensor:
        # The released model rounds the timestep to its own dtype before embedding.
        return self.t_embedder(timestep.to(self.dtype))

    def _context_embedding(self, batch: int, device: torch.device) -> torch.Tensor:
        t0 = torch.full((batch,), self.config.context_timestep, device=device)
        return self._timestep(t0)

    def _unpatchify(self, tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """(B, T', S, pt·ph·pw·C_out) → (B, C_out, T, H, W), channels fastest in each patch."""
        pt, ph, pw = self.config.patch_size
        batch, frames = tokens.shape[:2]
        gh, gw = -(-height // ph), -(-width // pw)
        x = tokens.reshape(batch, frames, gh, gw, pt, ph, pw, self.config.out_channels)
        x = x.permute(0, 7, 1, 4, 2, 5, 3, 6).reshape(batch, self.config.out_channels, frames * pt, gh * ph, gw * pw)
        return x[:, :, :, :height, :width].float()

    def _run_blocks(
        self,
        x: torch.Tensor,
        spatial_cond: torch.Tensor,
        temporal_cond: torch.Tensor,
        caches: list[dict] | None = None,
        store: bool = False,
    ) -> torch.Tensor:
        for depth, (spatial, temporal) in enumerate(zip(self.spatial_blocks, self.temporal_blocks)):
            x = spatial(x, spatial_cond, self.rope)
            x = temporal(x, temporal_cond, self.rope, None if caches is None else caches[depth], store)
        return x

    # -- plain path -------------------------------------------------------------------------------------------------

    def forward(
        self, x: torch.Tensor, timestep: torch.Tensor, actions: torch.Tensor, x_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x (B, C, T, H, W) latents; timestep (B,); actions (B, T−pad, action_dim); x_mask (B, T) True = target.

        Returns (B, out_channels, T, H, W) float32; channels [:in_channels] are the predicted velocity.
        """
        batch, _, frames, height, width = x.shape
        tokens = self._embed(x)
        t = self._timestep(timestep)  # (B, C)
        action = self.action_embedder(actions.to(self.dtype))  # (B, T, C)
        if action.shape[1] != frames:
            raise ValueError(
                f"{actions.shape[1]} actions + {self.config.pad_action_num} context frames != {frames} latent frames"
            )
        t_frames = t[:, None] + action
        spatial_cond = self.t_block(t_frames)
        temporal_cond = self.t_block(t)[:, None].expand(-1, frames, -1)
        final_t = t[:, None].expand(-1, frames, -1)
        if x_mask is not None:
            t0 = self._context_embedding(batch, x.device)
            t0_cond = self.t_block(t0)[:, None]
            target = x_mask[:, :, None].bool()
            spatial_cond = torch.where(target, spatial_cond, t0_cond)
            temporal_cond = torch.where(target, temporal_cond, t0_cond)
            final_t = torch.where(target, final_t, t0[:, None])
        tokens = self._run_blocks(tokens, spatial_cond, temporal_cond)
        return self._unpatchify(self.final_layer(tokens, final_t), height, width)

    # -- cached path ------------------------------------------------------------------------------------------------

    def encode_context(self, context: torch.Tensor) -> list[dict]:
        """Run the clean context frames (B, C, Tc, H, W) once; returns per-depth temporal keys/values."""
        batch, _, frames = context.shape[:3]
        tokens = self._embed(context)
        t0_cond = self.t_block(self._context_embedding(batch, context.device))[:, None].expand(-1, frames, -1)
        caches: list[dict] = [{} for _ in range(self.config.depth)]
        self._run_blocks(tokens, t0_cond, t0_cond, caches, store=True)
        return caches

    def forward_targets(
        self, x: torch.Tensor, timestep: torch.Tensor, actions: torch.Tensor, caches: list[dict]
    ) -> torch.Tensor:
        """Target frames only: x (B, C, Ta, H, W) noisy latents, actions (B, Ta, action_dim), caches from
        ``encode_context``. Equals ``forward`` on [context, x] with the context masked, restricted to the targets."""
        batch, _, frames, height, width = x.shape
        tokens = self._embed(x)
        t = self._timestep(timestep)
        action = self.action_embedder(actions.to(self.dtype), with_padding=False)
        spatial_cond = self.t_block(t[:, None] + action)
        temporal_cond = self.t_block(t)[:, None].expand(-1, frames, -1)
        tokens = self._run_blocks(tokens, spatial_cond, temporal_cond, caches)
        return self._unpatchify(self.final_layer(tokens, t[:, None].expand(-1, frames, -1)), height, width)
