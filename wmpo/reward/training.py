"""Reward-model training data and metrics (pure functions; the loop is ``scripts/train_reward_model.py``).

Labels come from the simulator: the clip ending just before an episode's decisive step (frames end−window … end−1)
is labelled with the episode's ``complete``; clips ending earlier are negatives. The decisive step is the first
success (``success_step``, for an episode recorded on after it) or else ``finish_step``; later frames are unlabelled.
"""

from __future__ import annotations

import numpy as np

from opensora.datasets.shards import EpisodeRef, ShardError

RELEASED_THRESHOLD_GRID = np.linspace(0.3, 1.0, 20)


def check_frame_sizes(episodes: list[EpisodeRef]) -> tuple[int, ...]:
    """The frame shape (H, W, 3) all episodes share; mixed sizes fail naming an episode of each size."""
    first = {}
    for episode in episodes:
        first.setdefault(tuple(episode.video.shape[1:]), episode)
    if len(first) > 1:
        examples = "; ".join(f"{'x'.join(map(str, shape))} in {e.shard} (episode {e.key})"
                             for shape, e in first.items())
        raise ShardError(f"episodes of mixed frame sizes: {examples}; use shards of one image size (convert_hdf5.py "
                         "and collect_rollouts.py resize explicitly)")
    return next(iter(first), ())


def decisive_step(episode: EpisodeRef) -> int:
    """Steps executed when the episode's outcome was decided: its first success, or its finish."""
    return int(episode.meta.get("success_step", episode.finish_step))


def clip(episode: EpisodeRef, end: int, window: int = 8) -> np.ndarray:
    """uint8 frames end−window … end−1 of an episode."""
    return np.asarray(episode.video.open()[end - window : end])


def training_clips(
    episodes: list[EpisodeRef], rng: np.random.Generator, window: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: its end clip (label = complete) and one random earlier clip (label 0)."""
    clips, labels = [], []
    for episode in episodes:
        finish = decisive_step(episode)
        clips.append(clip(episode, finish, window))
        labels.append(int(bool(episode.meta.get("complete", False))))
        if finish - window >= window:
            clips.append(clip(episode, int(rng.integers(window, finish - window + 1)), window))
            labels.append(0)
    return np.stack(clips), np.asarray(labels)


def validation_clips(episodes: list[EpisodeRef], window: int = 8, stride: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: the end clip (label = complete) and every ``stride``-th earlier clip (label 0)."""
    clips, labels = [], []
    for episode in episodes:
        finish = decisive_step(episode)
        clips.append(clip(episode, finish, window))
        labels.append(int(bool(episode.meta.get("complete", False))))
        for end in range(finish - stride, window - 1, -stride):
            clips.append(clip(episode, end, window))
            labels.append(0)
    return np.stack(clips), np.asarray(labels)


def threshold_metrics(scores: np.ndarray, labels: np.ndarray, grid: np.ndarray = RELEASED_THRESHOLD_GRID) -> dict:
    """Precision, recall and F1 at every threshold of ``grid``; the best-F1 threshold first."""
    rows = []
    for threshold in grid:
        predicted = scores >= threshold
        tp = int((predicted & (labels == 1)).sum())
        fp = int((predicted & (labels == 0)).sum())
        fn = int((~predicted & (labels == 1)).sum())
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1})
    best = max(rows, key=lambda row: (row["f1"], row["threshold"]))
    return {"best": best, "grid": rows, "accuracy": float(((scores >= best["threshold"]) == labels).mean())}
