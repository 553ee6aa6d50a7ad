"""Per-frame SDXL VAE (diffusers ``AutoencoderKL``): video (B, 3, T, H, W) in [-1, 1] ↔ latents (B, 4, T, H/8, W/8).

No temporal compression: frames are folded into the batch and processed ``micro_batch_size`` at a time. Latents are
the posterior *sample* times the SDXL scaling factor 0.13025 (no shift), as the released world models were trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import nn

from opensora.models.patch_autoencoder import LinearPatchVAE, PatchAutoencoderError

SDXL_SCALING_FACTOR = 0.13025

SDXL_VAE_CONFIG = {
    "in_channels": 3,
    "out_channels": 3,
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "block_out_channels": [128, 256, 512, 512],
    "layers_per_block": 2,
    "act_fn": "silu",
    "latent_channels": 4,
    "norm_num_groups": 32,
    "sample_size": 1024,
    "scaling_factor": SDXL_SCALING_FACTOR,
    "force_upcast": True,
}

TINY_VAE_CONFIG = {
    **SDXL_VAE_CONFIG,
    "down_block_types": ["DownEncoderBlock2D"] * 3,
    "up_block_types": ["UpDecoderBlock2D"] * 3,
    "block_out_channels": [8, 16, 16],
    "layers_per_block": 1,
    "norm_num_groups": 4,
    "sample_size": 64,
}


class FrameVAE(nn.Module):
    """A 2-D ``AutoencoderKL`` applied frame by frame."""

    def __init__(self, autoencoder: AutoencoderKL, micro_batch_size: int = 64) -> None:
        super().__init__()
        self.module = autoencoder
        self.micro_batch_size = micro_batch_size
        self.scaling_factor = float(autoencoder.config.scaling_factor)

    @classmethod
    def from_config(cls, name: str = "sdxl", micro_batch_size: int = 64) -> FrameVAE:
        """Randomly initialized ``sdxl`` or ``tiny`` autoencoder."""
        configs = {"sdxl": SDXL_VAE_CONFIG, "tiny": TINY_VAE_CONFIG}
        if name not in configs:
            raise KeyError(f"unknown VAE preset {name!r}; known presets: {', '.join(configs)}")
        return cls(AutoencoderKL(**configs[name]), micro_batch_size)

    @classmethod
    def from_pretrained(cls, path: str | Path, micro_batch_size: int = 64) -> FrameVAE:
        """Load a diffusers VAE folder (``config.json`` + weights), e.g. ``checkpoint_files/world_models/vae``."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: not a diffusers VAE folder (no config.json)")
        return cls(AutoencoderKL.from_pretrained(str(path), local_files_only=True), micro_batch_size)

    @property
    def latent_channels(self) -> int:
        return int(self.module.config.latent_channels)

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.module.config.block_out_channels) - 1)

    def _frames(self, video: torch.Tensor) -> torch.Tensor:
        return video.permute(0, 2, 1, 3, 4).reshape(-1, *video.shape[1:2], *video.shape[3:])

    def _video(self, frames: torch.Tensor, batch: int) -> torch.Tensor:
        return frames.reshape(batch, -1, *frames.shape[1:]).permute(0, 2, 1, 3, 4)

    def encode(
        self,
        video: torch.Tensor,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        sample: bool = True,
    ) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] → (B, 4, T, H/8, W/8) scaled latents: posterior sample, or its mean.

        ``generator`` may hold one generator per video, so each video's sample does not depend on the others.
        """
        dtype = next(self.module.parameters()).dtype
        frames = self._frames(video.to(dtype))
        means, stds = [], []
        for chunk in frames.split(self.micro_batch_size):
            posterior = self.module.encode(chunk).latent_dist
            means.append(posterior.mean)
            stds.append(posterior.std)
        mean = self._video(torch.cat(means), video.shape[0])
        if not sample:
            return mean * self.scaling_factor
        std = self._video(torch.cat(stds), video.shape[0])
        generators = generator if isinstance(generator, Sequence) else None
        if generators is not None and len(generators) != video.shape[0]:
            raise ValueError(f"{len(generators)} generators for {video.shape[0]} videos")
        if generators is None:
            noise = torch.randn(mean.shape, generator=generator, device=generator.device if generator else mean.device)
        else:
            noise = torch.stack([torch.randn(mean.shape[1:], generator=g, device=g.device) for g in generators])
        return (mean + std * noise.to(mean.device, mean.dtype)) * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 4, T, h, w) scaled latents → (B, 3, T, 8h, 8w) in about [-1, 1]."""
        dtype = next(self.module.parameters()).dtype
        frames = self._frames(latents.to(dtype) / self.scaling_factor)
        decoded = [self.module.decode(chunk).sample for chunk in frames.split(self.micro_batch_size)]
        return self._video(torch.cat(decoded), latents.shape[0])


class PixelShuffleVAE(nn.Module):
    """An exact, parameter-free "autoencoder": ``factor``×``factor`` pixel blocks become channels.

    For CPU experiments where a randomly initialized KL autoencoder would hide what the world model learns:
    reconstructions are perfect, so errors are the world model's own. Same interface as ``FrameVAE``.
    """

    scaling_factor = 1.0

    def __init__(self, factor: int = 4) -> None:
        super().__init__()
        self.factor = factor
        self.register_buffer("anchor", torch.zeros(()), persistent=False)  # carries device and dtype

    @property
    def latent_channels(self) -> int:
        return 3 * self.factor**2

    @property
    def downsample(self) -> int:
        return self.factor

    def encode(self, video: torch.Tensor, generator=None, sample: bool = True) -> torch.Tensor:
        batch, _, frames = video.shape[:3]
        flat = video.to(self.anchor.dtype).permute(0, 2, 1, 3, 4).flatten(0, 1)
        latents = nn.functional.pixel_unshuffle(flat, self.factor)
        return latents.unflatten(0, (batch, frames)).permute(0, 2, 1, 3, 4)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        batch, _, frames = latents.shape[:3]
        flat = latents.to(self.anchor.dtype).permute(0, 2, 1, 3, 4).flatten(0, 1)
        video = nn.functional.pixel_shuffle(flat, self.factor)
        return video.unflatten(0, (batch, frames)).permute(0, 2, 1, 3, 4)


def build_vae(preset: str, path: str | Path | None = None, micro_batch_size: int = 64) -> nn.Module:
    """``linear-patch``: the fitted autoencoder in folder ``path``. Otherwise a diffusers VAE folder when ``path`` is
    given, else a randomly initialized ``sdxl``/``tiny`` preset or ``pixel``."""
    if preset == "linear-patch":
        if not path:
            raise PatchAutoencoderError("vae_preset=linear-patch needs vae_path: the folder written by "
                                        "scripts/fit_patch_autoencoder.py")
        return LinearPatchVAE.load(path)
    if path:
        return FrameVAE.from_pretrained(path, micro_batch_size)
    if preset == "pixel":
        return PixelShuffleVAE()
    return FrameVAE.from_config(preset, micro_batch_size)


def frames_to_video(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) → float (B, 3, T, H, W) in [-1, 1]."""
    return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def video_to_frames(video: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, H, W) in [-1, 1] → uint8 (B, T, H, W, 3), ``((x·0.5+0.5)·255)`` clipped and truncated."""
    pixels = ((video.float() * 0.5 + 0.5) * 255.0).clamp(0.0, 255.0)
    return pixels.to(torch.uint8).permute(0, 2, 3, 4, 1)
