"""Supervised examples from episode shards: one frame, the instruction, and the 8 actions that follow it.

An episode with ``finish_step`` N gives N examples (frames 0 … N−1). The chunk of frame t is actions t … t+7; past
the end of the episode the last executed action is repeated, so the policy learns to keep doing what finished the
task instead of learning arbitrary padding.
"""

from __future__ import annotations

import numpy as np

from opensora.datasets.shards import EpisodeRef, ShardError


class StepExamples:
    """Indexable (frame uint8 (H, W, 3), actions float64 (chunk, 7)) examples over a list of episodes."""

    def __init__(self, episodes: list[EpisodeRef], chunk: int = 8) -> None:
        if not episodes:
            raise ShardError("no episodes to build supervised examples from")
        self.chunk = chunk
        self.videos, self.actions, index = [], [], []
        for number, episode in enumerate(episodes):
            video, actions = episode.video.open(), episode.executed_actions()
            steps = episode.finish_step
            if steps < 1 or video.shape[0] < steps or actions.shape[0] < steps:
                raise ShardError(
                    f"{episode.shard}: episode {episode.key} has finish_step {steps} but {video.shape[0]} frames and "
                    f"{actions.shape[0]} actions"
                )
            self.videos.append(video)
            self.actions.append(actions)
            index += [(number, t) for t in range(steps)]
        self.index = np.asarray(index, dtype=np.int64)
        self.image_shape = tuple(self.videos[0].shape[1:])
        mixed = {tuple(v.shape[1:]) for v in self.videos} - {self.image_shape}
        if mixed:
            raise ShardError(f"episodes of mixed frame shapes: {sorted({self.image_shape, *mixed})}")

    def __len__(self) -> int:
        return len(self.index)

    def chunk_at(self, episode: int, t: int) -> np.ndarray:
        actions = self.actions[episode]
        rows = np.minimum(np.arange(t, t + self.chunk), len(actions) - 1)
        return actions[rows]

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Frames (B, H, W, 3) uint8 and action chunks (B, chunk, 7) of the examples ``rows``."""
        frames = np.stack([self.videos[e][t] for e, t in self.index[rows]])
        chunks = np.stack([self.chunk_at(e, t) for e, t in self.index[rows]])
        return frames, chunks

    def evenly_spaced(self, count: int) -> np.ndarray:
        """``count`` example indices spread over the whole set (all of them when there are fewer)."""
        if count >= len(self):
            return np.arange(len(self))
        return np.linspace(0, len(self) - 1, count).round().astype(np.int64)
