"""Rectified flow: x_t = (1 − t/1000)·x0 + (t/1000)·ε, the model predicts the velocity x0 − ε.

Training samples logit-normal timesteps, noises the context frames to the fixed context timestep and averages the
squared velocity error over target frames only. Sampling integrates with Euler steps from t=1000 to 0 while the
context frames are held at their clean latents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from opensora.models.stdit3 import STDiT3


@dataclass
class RFlowConfig:
    """Rectified-flow settings of the released world models."""

    num_timesteps: int = 1000
    """Time horizon; t=num_timesteps is pure noise."""
    num_sampling_steps: int = 30
    """Euler steps per generated chunk."""
    use_timestep_transform: bool = True
    """Resolution/length shift of the timesteps (the identity at 256×256 with the released temporal factor 4)."""
    transform_num_frames: int = 4
    """Temporal factor of the shift, hard-coded to 4 in the released code."""
    base_resolution: int = 512 * 512
    """Reference pixel count of the shift."""
    context_timestep: float = 15.0
    """Timestep the context frames are noised to during training."""


class RFlow:
    """Training loss and masked Euler sampler."""

    def __init__(self, config: RFlowConfig | None = None) -> None:
        self.config = config or RFlowConfig()

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        keep = (1.0 - t.float() / self.config.num_timesteps).view(-1, *([1] * (x0.dim() - 1)))
        return keep * x0 + (1.0 - keep) * noise

    def timestep_transform(self, t: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """t' = r·t/(1+(r−1)·t) on t/num_timesteps, r = sqrt(pixels/base)·sqrt(temporal factor)."""
        if not self.config.use_timestep_transform:
            return t
        ratio = (height * width / self.config.base_resolution) ** 0.5 * self.config.transform_num_frames**0.5
        unit = t / self.config.num_timesteps
        return ratio * unit / (1 + (ratio - 1) * unit) * self.config.num_timesteps

    def sample_timesteps(
        self, batch: int, height: int, width: int, generator: torch.Generator | None, device: torch.device | str
    ) -> torch.Tensor:
        """Logit-normal t = sigmoid(N(0, 1))·num_timesteps, then the transform."""
        normal = torch.randn(batch, generator=generator, device=device)
        return self.timestep_transform(torch.sigmoid(normal) * self.config.num_timesteps, height, width)

    def training_loss(
        self,
        model: STDiT3,
        x0: torch.Tensor,
        actions: torch.Tensor,
        x_mask: torch.Tensor,
        height: int,
        width: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Per-sample loss (B,): mean squared velocity error over the target frames (x_mask True)."""
        batch = x0.shape[0]
        t = self.sample_timesteps(batch, height, width, generator, x0.device)
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        x_t = self.add_noise(x0, noise, t)
        x_ctx = self.add_noise(x0, noise, torch.full_like(t, self.config.context_timestep))
        x_t = torch.where(x_mask[:, None, :, None, None], x_t, x_ctx)
        velocity = model(x_t, t, actions, x_mask)[:, : x0.shape[1]]
        error = (velocity - (x0 - noise).float()).pow(2).mean(dim=(1, 3, 4))  # (B, T)
        weights = x_mask.float()
        return (error * weights).sum(dim=1) / weights.sum(dim=1)

    def sampling_timesteps(self, batch: int, height: int, width: int, device) -> list[torch.Tensor]:
        steps = self.config.num_sampling_steps
        values = [(1.0 - i / steps) * self.config.num_timesteps for i in range(steps)]
        return [self.timestep_transform(torch.full((batch,), v, device=device), height, width) for v in values]

    @torch.no_grad()
    def sample(
        self,
        model: STDiT3,
        context: torch.Tensor,
        actions: torch.Tensor,
        noise: torch.Tensor,
        height: int,
        width: int,
        use_cache: bool = True,
    ) -> torch.Tensor:
        """Generate target latents (B, C, Ta, h, w) from clean context latents (B, C, Tc, h, w) and actions.

        ``height``/``width`` are the pixel resolution (for the timestep transform). ``use_cache`` runs the context
        frames once (``encode_context``) instead of at every step; both paths compute the same velocities.
        """
        timesteps = self.sampling_timesteps(noise.shape[0], height, width, noise.device)
        z = noise.float()
        caches = model.encode_context(context) if use_cache else None
        frames = context.shape[2] + noise.shape[2]
        x_mask = torch.zeros((noise.shape[0], frames), dtype=torch.bool, device=noise.device)
        x_mask[:, context.shape[2] :] = True
        channels = noise.shape[1]
        for i, t in enumerate(timesteps):
            if use_cache:
                velocity = model.forward_targets(z, t, actions, caches)[:, :channels]
            else:
                full = model(torch.cat([context.float(), z], dim=2), t, actions, x_mask)
                velocity = full[:, :channels, context.shape[2] :]
            dt = (t - timesteps[i + 1]) if i + 1 < len(timesteps) else t
            z = z + velocity * (dt / self.config.num_timesteps).view(-1, 1, 1, 1, 1)
        return z


def seeded_noise(
    shape: Sequence[int], generators: Sequence[torch.Generator], device: torch.device | str
) -> torch.Tensor:
    """(B, ...) standard normal noise, row b drawn from ``generators[b]`` (reproducible per trajectory)."""
    if len(generators) != shape[0]:
        raise ValueError(f"{len(generators)} generators for a batch of {shape[0]}")
    rows = [torch.randn(tuple(shape[1:]), generator=g, device=g.device) for g in generators]
    return torch.stack(rows).to(device)
