"""A synthetic action-driven video task: a colored square pushed around a gray canvas by the first two action
dimensions. Small enough to train a tiny world model on a CPU, structured enough that copying the last frame loses."""

from __future__ import annotations

import numpy as np

from opensora.datasets.shards import Episode


def moving_square_episode(key: str, steps: int, size: int, rng: np.random.Generator, side: int = 8) -> Episode:
    """``steps`` actions and ``steps + 1`` frames; each action moves the square by 3·(a0, a1) pixels."""
    actions = np.zeros((steps, 7), dtype=np.float32)
    current = rng.uniform(-1, 1, size=7)
    for step in range(steps):
        if step % 4 == 0:
            current = rng.uniform(-1, 1, size=7)
        actions[step] = current
    position = rng.uniform(0, size - side, size=2)
    color = np.array([220, 40, 40], dtype=np.uint8)
    video = np.full((steps + 1, size, size, 3), 128, dtype=np.uint8)
    for frame in range(steps + 1):
        row, col = np.round(position).astype(int)
        video[frame, row : row + side, col : col + side] = color
        if frame < steps:
            position = np.clip(position + 3.0 * actions[frame, :2], 0, size - side)
    return Episode(key, video, actions, {"finish_step": steps, "complete": False})


def moving_square_episodes(count: int, steps: int = 24, size: int = 32, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [moving_square_episode(f"episode_{i:05d}", steps, size, rng) for i in range(count)]
