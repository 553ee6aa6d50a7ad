"""A synthetic action-driven video task: a square pushed around a gray canvas by the first two action dimensions,
red while the last (gripper) dimension is negative and green otherwise. Small enough to train a tiny world model on
a CPU; copying the last frame loses whenever an action moves or recolors the square."""

from __future__ import annotations

import numpy as np

from opensora.datasets.shards import Episode


def moving_square_episode(key: str, steps: int, size: int, rng: np.random.Generator, side: int = 8) -> Episode:
    """``steps`` actions and ``steps + 1`` frames; action k moves the square by 2·(a0, a1) pixels and sets its
    color in frame k+1 from the sign of a6."""
    actions = np.zeros((steps, 7), dtype=np.float32)
    current = rng.uniform(-1, 1, size=7)
    for step in range(steps):
        if step % 4 == 0:
            current = rng.uniform(-1, 1, size=7)
        actions[step] = current
    position = rng.uniform(0, size - side, size=2)
    red, green = np.array([220, 40, 40], dtype=np.uint8), np.array([40, 200, 40], dtype=np.uint8)
    video = np.full((steps + 1, size, size, 3), 128, dtype=np.uint8)
    color = red
    for frame in range(steps + 1):
        row, col = np.round(position).astype(int)
        video[frame, row : row + side, col : col + side] = color
        if frame < steps:
            position = np.clip(position + 2.0 * actions[frame, :2], 0, size - side)
            color = green if actions[frame, 6] >= 0 else red
    return Episode(key, video, actions, {"finish_step": steps, "complete": False})


def moving_square_episodes(count: int, steps: int = 24, size: int = 32, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    return [moving_square_episode(f"episode_{i:05d}", steps, size, rng) for i in range(count)]


def success_episode(key: str, steps: int, size: int, rng: np.random.Generator, succeed: bool, side: int = 8) -> Episode:
    """A randomly moving square that turns green 3 frames before a successful episode's finish_step and stays red
    in failed ones; frames after finish_step are not recorded (like simulator rollouts that stop at success)."""
    episode = moving_square_episode(key, steps, size, rng, side)
    video = episode.video.copy()
    red = np.array([220, 40, 40], dtype=np.uint8)
    video[np.all(video == np.array([40, 200, 40], dtype=np.uint8), axis=-1)] = red
    finish = steps
    if succeed:
        finish = int(rng.integers(steps // 2, steps + 1))
        turned = video[finish - 3 : finish + 1]
        turned[np.all(turned == red, axis=-1)] = np.array([40, 200, 40], dtype=np.uint8)
    return Episode(key, video[: finish + 1], episode.actions[:finish], {"finish_step": finish, "complete": succeed})
