"""A fitted linear autoencoder: the principal components of ``factor``×``factor`` pixel blocks.

For world models small enough to train on a CPU. Rendered robot scenes are highly redundant: on 64×64 Lift frames
the first 32 components of the 8×8×3 blocks keep about 99% of the variance (about 32 dB PSNR), so the transformer
generates 32 numbers per 8×8 block instead of 192, and 64 tokens per frame instead of 256. Fitting takes seconds
(one covariance and its eigenvectors), encoding and decoding are one matrix product each, and nothing is random.
Same interface as ``FrameVAE``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from opensora.errors import UserError
from opensora.weight_files import load_safetensors

WEIGHTS = "linear_patch.safetensors"
CONFIG = "config.json"
KIND = "linear_patch"


class PatchAutoencoderError(UserError, ValueError):
    """A linear patch autoencoder that cannot be fitted or loaded."""


def _blocks(frames: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, 3, H, W) → (N, 3·factor², H/factor, W/factor), channel order of ``pixel_unshuffle``."""
    height, width = frames.shape[-2:]
    if height % factor or width % factor:
        raise PatchAutoencoderError(f"frames of {height}x{width} pixels do not split into {factor}x{factor} blocks")
    return nn.functional.pixel_unshuffle(frames, factor)


class LinearPatchVAE(nn.Module):
    """video (B, 3, T, H, W) in [-1, 1] ↔ latents (B, k, T, H/f, W/f): centred block vectors on the top-k components.

    Latents are scaled by ``scaling_factor`` so that their mean variance over the channels is one.
    """

    def __init__(self, mean: torch.Tensor, basis: torch.Tensor, scaling_factor: float, factor: int) -> None:
        super().__init__()
        if basis.shape[0] != 3 * factor**2 or mean.shape != (basis.shape[0],):
            raise PatchAutoencoderError(f"basis {tuple(basis.shape)} and mean {tuple(mean.shape)} do not match "
                                        f"{factor}x{factor}x3 blocks")
        self.factor = factor
        self.scaling_factor = float(scaling_factor)
        self.register_buffer("mean", mean.float().clone())
        self.register_buffer("basis", basis.float().clone())

    @property
    def latent_channels(self) -> int:
        return int(self.basis.shape[1])

    @property
    def downsample(self) -> int:
        return self.factor

    def encode(self, video: torch.Tensor, generator=None, sample: bool = True) -> torch.Tensor:
        """Deterministic: ``generator`` and ``sample`` exist for the ``FrameVAE`` interface only."""
        batch, _, frames = video.shape[:3]
        flat = video.to(self.basis.dtype).permute(0, 2, 1, 3, 4).flatten(0, 1)
        blocks = _blocks(flat, self.factor) - self.mean[:, None, None]
        latents = torch.einsum("ndhw,dk->nkhw", blocks, self.basis) * self.scaling_factor
        return latents.unflatten(0, (batch, frames)).permute(0, 2, 1, 3, 4)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        batch, _, frames = latents.shape[:3]
        flat = latents.to(self.basis.dtype).permute(0, 2, 1, 3, 4).flatten(0, 1) / self.scaling_factor
        blocks = torch.einsum("nkhw,dk->ndhw", flat, self.basis) + self.mean[:, None, None]
        video = nn.functional.pixel_shuffle(blocks, self.factor)
        return video.unflatten(0, (batch, frames)).permute(0, 2, 1, 3, 4)

    @classmethod
    def fit(cls, frames: Iterable[np.ndarray], factor: int = 8, channels: int = 16) -> tuple[LinearPatchVAE, dict]:
        """Fit on batches of uint8 (N, H, W, 3) frames; returns the autoencoder and a summary of the fit."""
        dim = 3 * factor**2
        if not 1 <= channels <= dim:
            raise PatchAutoencoderError(f"channels={channels}: must be in [1, {dim}] for {factor}x{factor} blocks")
        total = torch.zeros(dim, dtype=torch.float64)
        outer = torch.zeros(dim, dim, dtype=torch.float64)
        count, images = 0, 0
        for batch in frames:
            pixels = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).double() / 127.5 - 1.0
            vectors = _blocks(pixels, factor).permute(0, 2, 3, 1).reshape(-1, dim)
            total += vectors.sum(0)
            outer += vectors.T @ vectors
            count, images = count + len(vectors), images + len(batch)
        if count < dim:
            raise PatchAutoencoderError(f"{images} frames give {count} blocks, fewer than the {dim} block dimensions")
        mean = total / count
        covariance = outer / count - torch.outer(mean, mean)
        eigenvalues, vectors = torch.linalg.eigh(covariance)
        eigenvalues, vectors = eigenvalues.flip(0).clamp_min(0.0), vectors.flip(1)
        # A deterministic sign: the largest entry of each component is positive.
        signs = torch.sign(vectors.gather(0, vectors.abs().argmax(0, keepdim=True)))
        basis = vectors[:, :channels] * signs[:, :channels]
        kept = eigenvalues[:channels]
        if float(kept.mean()) <= 0.0:
            raise PatchAutoencoderError(f"the {images} frames are constant: nothing to encode")
        scaling_factor = float(kept.mean()) ** -0.5
        summary = {"frames": images, "explained_variance": float(kept.sum() / eigenvalues.sum())}
        return cls(mean, basis, scaling_factor, factor), summary

    @classmethod
    def fit_episodes(cls, episodes: Iterable, factor: int, channels: int,
                     frame_stride: int = 2) -> tuple[LinearPatchVAE, dict]:
        """Fit on every ``frame_stride``-th frame of indexed episodes (consecutive frames add little)."""
        return cls.fit((ref.video.open()[: ref.finish_step + 1: frame_stride] for ref in episodes), factor, channels)

    def save(self, folder: str | Path, **extra) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"mean": self.mean.contiguous(), "basis": self.basis.contiguous()}, str(folder / WEIGHTS))
        config = {"kind": KIND, "factor": self.factor, "latent_channels": self.latent_channels,
                  "scaling_factor": self.scaling_factor, **extra}
        (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> LinearPatchVAE:
        folder = Path(folder)
        config_path = folder / CONFIG
        if not config_path.is_file() or not (folder / WEIGHTS).is_file():
            raise PatchAutoencoderError(f"{folder}: not a linear patch autoencoder (needs {CONFIG} and {WEIGHTS}; "
                                        "write one with scripts/fit_patch_autoencoder.py)")
        config = json.loads(config_path.read_text())
        if config.get("kind") != KIND:
            raise PatchAutoencoderError(f"{config_path}: kind {config.get('kind')!r}, expected {KIND!r}")
        tensors = load_safetensors(folder / WEIGHTS)
        return cls(tensors["mean"], tensors["basis"], config["scaling_factor"], int(config["factor"]))
