"""Sliding-window success detection, whole-video and incremental.

Windows of ``window`` frames at stride 1 whose exclusive end e satisfies e ≥ min_steps + window are scored with
sigmoid(logit of class 1). The earliest window at or above the threshold decides: complete = True and
finish_step = e − 1 (the index of its last frame). Without such a window, complete = False and finish_step is the last
frame index. As in the released decision rule, a window that ends at the video's last frame never decides (its
success would be indistinguishable from running out of time); ``count_last=True`` lets it count. The incremental scorer consumes frames as imagination produces them and reaches the same decision
as soon as it is determined; each frame is preprocessed once, not once per window that contains it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wmpo.reward.preprocessing import preprocess_frames


@dataclass
class Decision:
    """Success decision for one video."""

    complete: bool
    finish_step: int


def window_ends(num_frames: int, window: int = 8, min_steps: int = 100) -> list[int]:
    """Exclusive window ends in chronological order."""
    return list(range(min_steps + window, num_frames + 1))


@torch.no_grad()
def window_scores(model: nn.Module, pixels: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Preprocessed clips (N, window, 3, S, S) → success probabilities (N,) = sigmoid(logit 1)."""
    scores = []
    for start in range(0, pixels.shape[0], batch_size):
        logits = model(pixel_values=pixels[start : start + batch_size]).logits
        scores.append(torch.sigmoid(logits[:, 1].float()))
    return torch.cat(scores) if scores else torch.zeros(0)


def _model_size(model: nn.Module) -> int:
    return int(model.config.image_size)


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def score_windows(
    model: nn.Module, video: torch.Tensor, window: int = 8, min_steps: int = 100, batch_size: int = 512
) -> torch.Tensor:
    """Success probability of every eligible window of one uint8 video (T, H, W, 3), in chronological order."""
    ends = window_ends(video.shape[0], window, min_steps)
    if not ends:
        return torch.zeros(0)
    frames = preprocess_frames(video[ends[0] - window :].to(_device(model)), _model_size(model))
    offset = ends[0] - window
    clips = torch.stack([frames[e - window - offset : e - offset] for e in ends])
    return window_scores(model, clips, batch_size).cpu()


def decide(
    scores: torch.Tensor, threshold: float, num_frames: int, window: int = 8, min_steps: int = 100,
    count_last: bool = False,
) -> Decision:
    """Earliest window at or above ``threshold`` → Decision (``scores`` of every window of ``window_ends``)."""
    ends = window_ends(num_frames, window, min_steps)
    if len(scores) != len(ends):
        raise ValueError(f"{len(scores)} window scores for {len(ends)} windows of a {num_frames}-frame video")
    hits = (scores >= threshold).nonzero().flatten().tolist()
    for hit in hits:
        if count_last or ends[hit] < num_frames:
            return Decision(True, ends[hit] - 1)
    return Decision(False, num_frames - 1)


def score_video(
    model: nn.Module, video: torch.Tensor, threshold: float, window: int = 8, min_steps: int = 100,
    batch_size: int = 512, count_last: bool = False,
) -> Decision:
    """Whole-video decision (the released ``predict_success``)."""
    scores = score_windows(model, video, window, min_steps, batch_size)
    return decide(scores, threshold, video.shape[0], window, min_steps, count_last)


class IncrementalScorer:
    """Success decisions for a batch of videos that grow chunk by chunk.

    Only the last ``window − 1`` preprocessed frames of each video are kept between calls; windows of all still
    undecided videos are scored together. ``num_frames`` is the length a video reaches when it runs to the horizon:
    the window ending there is scored (its score is recorded) but decides only with ``count_last``, as in
    :func:`decide`.
    """

    def __init__(
        self, model: nn.Module, threshold: float, batch: int, num_frames: int, window: int = 8, min_steps: int = 100,
        batch_size: int = 512, count_last: bool = False,
    ) -> None:
        self.model, self.threshold, self.window, self.min_steps = model, threshold, window, min_steps
        self.batch_size = batch_size
        self.last_end = num_frames if count_last else num_frames - 1
        """Latest exclusive window end that may decide."""
        self.frames_seen = [0] * batch
        self.tail: list[torch.Tensor | None] = [None] * batch
        self.finish: list[int | None] = [None] * batch
        self.window_scores: list[dict[int, float]] = [{} for _ in range(batch)]
        """Per video: index of a window's last frame → its score (windows scored so far)."""

    @property
    def done(self) -> list[bool]:
        """Videos whose success window has been found."""
        return [f is not None for f in self.finish]

    @torch.no_grad()
    def update(self, frames: torch.Tensor, rows: list[int] | None = None) -> list[bool]:
        """Append uint8 frames (len(rows), k, H, W, 3) to the videos ``rows`` (default: all); returns ``done``."""
        rows = list(range(len(self.frames_seen))) if rows is None else rows
        device, size = _device(self.model), _model_size(self.model)
        pixels = preprocess_frames(frames.flatten(0, 1).to(device), size).unflatten(0, frames.shape[:2])
        clips, owners = [], []
        for row, new in zip(rows, pixels):
            history = new if self.tail[row] is None else torch.cat([self.tail[row], new])
            first_index = self.frames_seen[row] + new.shape[0] - history.shape[0]
            self.frames_seen[row] += new.shape[0]
            self.tail[row] = history[-(self.window - 1) :]
            if self.finish[row] is not None:
                continue
            for end in range(max(first_index + self.window, self.min_steps + self.window), self.frames_seen[row] + 1):
                clips.append(history[end - self.window - first_index : end - first_index])
                owners.append((row, end))
        if clips:
            scores = window_scores(self.model, torch.stack(clips), self.batch_size).cpu()
            for (row, end), score in zip(owners, scores.tolist()):
                self.window_scores[row][end - 1] = score
                if self.finish[row] is None and score >= self.threshold and end <= self.last_end:
                    self.finish[row] = end - 1
        return self.done

    def best_scores(self) -> list[float]:
        """Per video: the highest score of a window that may decide (0 while none has been scored)."""
        return [max((score for last, score in row.items() if last < self.last_end), default=0.0)
                for row in self.window_scores]

    def decisions(self) -> list[Decision]:
        """Current decisions; an undecided video reports its last frame index."""
        return [
            Decision(True, finish) if finish is not None else Decision(False, seen - 1)
            for finish, seen in zip(self.finish, self.frames_seen)
        ]
