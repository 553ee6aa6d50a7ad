"""Validation of a world model on held-out windows: sample the 8 target frames and compare.

Reported, each next to the copy-the-last-context-frame baseline:
- ``latent_mse``: predicted vs encoded (posterior mean) target latents;
- ``psnr_recon``: decoded prediction vs the VAE reconstruction of the targets (isolates the world model from the
  VAE's own reconstruction error);
- ``psnr``: decoded prediction vs the real frames.
A strip (ground truth over prediction) of the first window is saved as PNG and mp4.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from opensora.datasets.windows import WindowDataset
from opensora.models.stdit3 import STDiT3
from opensora.models.vae import video_to_frames
from opensora.schedulers.rflow import RFlow, seeded_noise


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB) of the mean squared error over all frames of uint8 tensors (..., H, W, 3).

    Pooled over the set rather than averaged per frame: a per-frame average rewards copying the last frame, which is
    exact on every frame where nothing moved.
    """
    error = (prediction.float() - target.float()).pow(2).mean().clamp_min(1e-10)
    return float(10 * torch.log10(255.0**2 / error))


def validation_indices(dataset: WindowDataset, count: int) -> list[int]:
    """``count`` windows spread evenly over the held-out set (always the same ones)."""
    return np.linspace(0, len(dataset) - 1, num=min(count, len(dataset))).round().astype(int).tolist()


@torch.no_grad()
def validate(
    model: STDiT3,
    vae: torch.nn.Module,
    scheduler: RFlow,
    dataset: WindowDataset,
    indices: list[int],
    seed: int,
    device: torch.device,
    strip_path: Path | None = None,
) -> dict[str, float]:
    items = [dataset[i] for i in indices]
    video = torch.stack([item["video"] for item in items]).to(device)
    actions = torch.stack([item["actions"] for item in items]).to(device)
    context_frames = dataset.context
    latents = vae.encode(video, sample=False).float()
    context, targets = latents[:, :, :context_frames], latents[:, :, context_frames:]
    generators = [torch.Generator(device=device).manual_seed(seed + i) for i in indices]
    noise = seeded_noise(targets.shape, generators, device)
    height, width = video.shape[-2:]
    predicted = scheduler.sample(model, context, actions, noise, height, width, use_cache=True)
    copied = context[:, :, -1:].expand_as(targets)

    real = video_to_frames(video[:, :, context_frames:])
    recon = video_to_frames(vae.decode(targets))
    pred_frames = video_to_frames(vae.decode(predicted))
    copy_frames = video_to_frames(vae.decode(copied))
    real_copy = video_to_frames(video[:, :, context_frames - 1 : context_frames]).expand_as(real)
    metrics = {
        "latent_mse": float((predicted - targets).pow(2).mean()),
        "latent_mse_copy": float((copied - targets).pow(2).mean()),
        "psnr_recon": psnr(pred_frames, recon),
        "psnr_recon_copy": psnr(copy_frames, recon),
        "psnr": psnr(pred_frames, real),
        "psnr_copy": psnr(real_copy, real),
    }
    if strip_path is not None:
        save_strip(real[0].cpu().numpy(), pred_frames[0].cpu().numpy(), strip_path)
    return metrics


def save_strip(truth: np.ndarray, prediction: np.ndarray, path: Path) -> None:
    """Ground truth (top row) over prediction (bottom row): a PNG of all frames and an mp4 of the pair."""
    import imageio.v3 as iio

    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = np.concatenate([truth, prediction], axis=1)  # (T, 2H, W, 3)
    iio.imwrite(path.with_suffix(".png"), np.concatenate(list(pairs), axis=1))
    iio.imwrite(path.with_suffix(".mp4"), pairs, fps=4, codec="libx264", macro_block_size=1)
