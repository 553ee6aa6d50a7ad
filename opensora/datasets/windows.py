"""Training windows cut from episode shards: 4 context + 8 target frames and the 8 actions producing the targets.

For every start s in [0, finish_step − 8]: frames s−3 … s+8 (indices below 0 repeat frame 0), actions s … s+7,
normalized on all 7 dimensions with 2·(a − q01)/(q99 − q01) − 1 (no clipping). The sampler is a seeded
permutation per epoch, split across ranks, that can start at any batch: a resumed run continues with exactly the
windows the interrupted run would have seen next.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from opensora.datasets.shards import ACTION_DIM, EpisodeRef


def load_action_bounds(stats_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """q01 and q99 of the actions from a dataset_statistics.json (``{"action": ...}`` or ``{key: {"action": ...}}``)."""
    path = Path(stats_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: action statistics file not found")
    stats = json.loads(path.read_text())
    if "action" not in stats:
        if not stats:
            raise ValueError(f"{path}: empty statistics file")
        stats = next(iter(stats.values()))
    try:
        bounds = np.asarray(stats["action"]["q01"], np.float32), np.asarray(stats["action"]["q99"], np.float32)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: no action q01/q99 in the statistics") from None
    for name, values in zip(("q01", "q99"), bounds):
        if values.shape != (ACTION_DIM,):
            raise ValueError(f"{path}: action {name} has {values.size} values, expected {ACTION_DIM}")
        if not np.isfinite(values).all():
            raise ValueError(f"{path}: action {name} is not finite: {values.tolist()}")
    return bounds


def normalize_actions(actions: np.ndarray, q01: np.ndarray, q99: np.ndarray) -> np.ndarray:
    """2·(a − q01)/(q99 − q01) − 1 on every dimension, unclipped (the world model's convention). A constant
    dimension (q99 = q01) becomes −1, the value the policy's normalization gives it."""
    span = q99 - q01
    scaled = 2.0 * (actions - q01) / np.where(span > 0, span, 1.0) - 1.0
    return np.where(span > 0, scaled, -1.0).astype(np.float32)


class WindowDataset(Dataset):
    """Map-style dataset of (video (3, 12, H, W) in [-1, 1], actions (8, 7) normalized) windows."""

    def __init__(
        self,
        episodes: list[EpisodeRef],
        q01: np.ndarray,
        q99: np.ndarray,
        context_frames: int = 4,
        target_frames: int = 8,
    ) -> None:
        self.episodes = episodes
        self.q01, self.q99 = q01, q99
        self.context = context_frames
        self.targets = target_frames
        starts = []
        for number, episode in enumerate(episodes):
            finish = episode.finish_step
            if episode.video.shape[0] < finish + 1 or episode.actions.shape[0] < finish:
                raise ValueError(
                    f"{episode.shard}: episode {episode.key} has finish_step {finish} but "
                    f"{episode.video.shape[0]} frames and {episode.actions.shape[0]} actions"
                )
            episode.executed_actions()
            for start in range(0, finish - target_frames + 1):
                starts.append((number, start))
        self.windows = np.asarray(starts, dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.windows)

    def frames(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 frames (12, H, W, 3) and unnormalized actions (8, 7) of one window."""
        number, start = self.windows[index]
        episode = self.episodes[number]
        frame_ids = np.clip(np.arange(start - self.context + 1, start + self.targets + 1), 0, None)
        video = np.asarray(episode.video.open()[frame_ids])
        actions = np.asarray(episode.actions.open()[start : start + self.targets], dtype=np.float32)
        return video, actions

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        video, actions = self.frames(index)
        pixels = torch.from_numpy(video).permute(3, 0, 1, 2).float() / 127.5 - 1.0
        return {
            "video": pixels,
            "actions": torch.from_numpy(normalize_actions(actions, self.q01, self.q99)),
            "index": torch.tensor(index),
        }


class ResumableBatchSampler:
    """Batches of window indices: a seeded permutation per epoch, this rank's slice, from a given position."""

    def __init__(
        self,
        size: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        epoch: int = 0,
        batch_in_epoch: int = 0,
    ) -> None:
        per_rank = size // world_size
        if per_rank < batch_size:
            raise ValueError(f"{size} windows cannot fill a batch of {batch_size} on each of {world_size} ranks")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.epoch, self.batch_in_epoch = epoch, batch_in_epoch
        self.batches_per_epoch = per_rank // batch_size

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed + self.epoch))
            mine = order[self.rank :: self.world_size].tolist()
            for batch in range(self.batch_in_epoch, self.batches_per_epoch):
                yield mine[batch * self.batch_size : (batch + 1) * self.batch_size]
            self.epoch += 1
            self.batch_in_epoch = 0

    @staticmethod
    def position(step: int, batches_per_epoch: int) -> tuple[int, int]:
        """(epoch, batch_in_epoch) after ``step`` batches from the beginning."""
        return divmod(step, batches_per_epoch)
