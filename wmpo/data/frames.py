"""Frame resizing shared by data conversion and imagination."""

from __future__ import annotations

import numpy as np
import torch


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W, 3) → (T, size, size, 3), bilinear with antialiasing, rounded back to uint8; frames already
    of that size come back unchanged."""
    if frames.shape[1:3] == (size, size):
        return frames
    tensor = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    resized = torch.nn.functional.interpolate(tensor, size=(size, size), mode="bilinear", antialias=True)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
