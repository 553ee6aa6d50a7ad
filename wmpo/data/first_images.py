"""The released first frames for imagination: ``data_files/first_images/<task>/<state_id>.png`` (256×256 RGB).

This project's own initial-state sets keep their frames in ``frames/NNNN.png`` (``wmpo.envs.initial_states``); both
layouts read into the same (state ids, uint8 frames) pair.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_first_images(folder: str | Path) -> tuple[list[int], np.ndarray]:
    """State ids (sorted numerically) and their frames (N, H, W, 3) uint8."""
    import imageio.v3 as iio

    folder = Path(folder)
    files = [p for p in folder.glob("*.png") if p.stem.isdigit()]
    if not files:
        raise FileNotFoundError(f"{folder}: no <state_id>.png first images")
    files.sort(key=lambda p: int(p.stem))
    frames = [np.asarray(iio.imread(p))[..., :3] for p in files]
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"{folder}: first images differ in size: {sorted(shapes)}")
    return [int(p.stem) for p in files], np.stack(frames).astype(np.uint8)
