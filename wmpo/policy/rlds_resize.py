"""The frame resize of the policies' training data pipeline: JPEG round trip, then an antialiased lanczos3 resize.

OpenVLA-style training data stores every frame as a JPEG and resizes it with TensorFlow's lanczos3 (antialias=True);
the released imagined rollouts push each frame the policy sees through the same two steps (the real-simulator
rollouts do not), so the policy meets world-model frames with the statistics of its training frames. Here both steps
are batched torch: torchvision's libjpeg/nvJPEG codec at quality 95 with 4:2:0 chroma subsampling (TensorFlow's
``encode_jpeg`` defaults), and a separable lanczos3 whose weights follow TensorFlow's ``scale_and_translate`` (kernel
stretched by the downscale factor, weights cut at the image border and renormalized), evaluated in float and then
rounded and clipped to uint8.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torchvision.io import decode_jpeg, encode_jpeg

from wmpo.policy.processing import check_frames

JPEG_QUALITY = 95
LANCZOS_RADIUS = 3.0


def jpeg_roundtrip(images: torch.Tensor, quality: int = JPEG_QUALITY) -> torch.Tensor:
    """uint8 (B, H, W, 3) → the same frames encoded as JPEG and decoded again, on the frames' device."""
    check_frames(images)
    if images.shape[0] == 0:
        return images.clone()
    planes = [image.permute(2, 0, 1).contiguous() for image in images]
    encoded = encode_jpeg(planes, quality=quality)
    if images.device.type == "cuda":
        decoded = decode_jpeg([e.cpu() for e in encoded], device=images.device)
    else:
        decoded = decode_jpeg(encoded)
    return torch.stack(decoded).permute(0, 2, 3, 1).contiguous()


def _lanczos(x: np.ndarray) -> np.ndarray:
    x = np.abs(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = LANCZOS_RADIUS * np.sin(np.pi * x) * np.sin(np.pi * x / LANCZOS_RADIUS) / (np.pi**2 * x**2)
    value = np.where(x <= 1e-3, 1.0, value)
    return np.where(x > LANCZOS_RADIUS, 0.0, value)


@lru_cache(maxsize=16)
def lanczos_matrix(in_size: int, out_size: int) -> torch.Tensor:
    """(out_size, in_size) float32 weights of the antialiased lanczos3 resize along one axis (computed once per pair
    of sizes: imagination resizes every chunk's frames; callers must not modify it)."""
    inv_scale = in_size / out_size
    kernel_scale = max(inv_scale, 1.0)
    centers = (np.arange(out_size) + 0.5) * inv_scale
    sources = np.arange(in_size) + 0.5
    weights = _lanczos((sources[None, :] - centers[:, None]) / kernel_scale)
    weights /= weights.sum(axis=1, keepdims=True)
    return torch.from_numpy(weights.astype(np.float32))


def lanczos_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) → uint8 (B, size, size, 3)."""
    check_frames(images)
    height, width = images.shape[1:3]
    if (height, width) == (size, size):
        return images.clone()
    rows = lanczos_matrix(height, size).to(images.device)
    cols = lanczos_matrix(width, size).to(images.device)
    resized = torch.einsum("oh,bhwc,pw->bopc", rows, images.float(), cols)
    return resized.round().clamp(0, 255).to(torch.uint8)


def rlds_resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (B, H, W, 3) → uint8 (B, size, size, 3): JPEG round trip, then the lanczos3 resize."""
    return lanczos_resize(jpeg_roundtrip(images), size)
