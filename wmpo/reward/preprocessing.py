"""Frames → VideoMAE pixel values, as batched torch ops: resize the short side to ``size`` (bilinear, antialiased,
on uint8 like transformers' processor), center crop ``size``×``size``, scale 1/255, ImageNet mean/std."""

from __future__ import annotations

import torch
from torchvision.transforms.v2 import functional as tvF

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess_frames(frames: torch.Tensor, size: int = 224) -> torch.Tensor:
    """uint8 (N, H, W, 3) → float32 (N, 3, size, size)."""
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {tuple(frames.shape)} {frames.dtype}")
    images = frames.permute(0, 3, 1, 2)
    height, width = images.shape[-2:]
    short, long = (height, width) if height <= width else (width, height)
    new_long = int(size * long / short)
    new_size = (size, new_long) if height <= width else (new_long, size)
    if (height, width) != new_size:
        images = tvF.resize(images, list(new_size), interpolation=tvF.InterpolationMode.BILINEAR, antialias=True)
    top = int((images.shape[-2] - size) / 2.0)
    left = int((images.shape[-1] - size) / 2.0)
    images = images[..., top : top + size, left : left + size]
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1) * 255.0
    return (images.float() - mean) / std


def preprocess_clips(clips: torch.Tensor, size: int = 224) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) → float32 (B, T, 3, size, size)."""
    batch, frames = clips.shape[:2]
    return preprocess_frames(clips.flatten(0, 1), size).unflatten(0, (batch, frames))
