"""Reward-model throughput: windows scored per second when every window is preprocessed on its own (the released
scorer) and when the incremental scorer preprocesses each frame once, and their ratio.

    python scripts/bench_reward.py                                   # tiny on the CPU
    python scripts/bench_reward.py preset=base device=cuda videos=16 frames=185
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from wmpo.benchmarking import interleaved, ratio_of_medians, spread
from wmpo.cli import parse_config
from wmpo.reward import IncrementalScorer, build_reward_model, preprocess_clips
from wmpo.reward.scoring import window_ends, window_scores


@dataclass
class Config:
    preset: str = "tiny"
    """Classifier size (tiny or base)."""
    device: str = "cpu"
    """Device."""
    videos: int = 4
    """Videos scored together."""
    frames: int = 185
    """Frames per video (185 = square's horizon + 1)."""
    min_steps: int = 100
    """Windows end at min_steps + 8 or later."""
    image_size: int = 256
    """Frame height and width."""
    repeats: int = 3
    """Timed runs per mode, interleaved, after one untimed warm-up run each."""


def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    device = torch.device(cfg.device)
    model = build_reward_model(cfg.preset).to(device)
    size = int(model.config.image_size)
    videos = torch.randint(0, 256, (cfg.videos, cfg.frames, cfg.image_size, cfg.image_size, 3), dtype=torch.uint8)
    ends = window_ends(cfg.frames, 8, cfg.min_steps)
    total = len(ends) * cfg.videos

    def per_window() -> None:
        clips = torch.stack([video[e - 8 : e] for video in videos for e in ends])
        for start in range(0, len(clips), 512):
            window_scores(model, preprocess_clips(clips[start : start + 512].to(device), size))

    def incremental() -> None:
        scorer = IncrementalScorer(model, threshold=2.0, batch=cfg.videos, num_frames=cfg.frames,
                                   min_steps=cfg.min_steps, count_last=True)
        scorer.update(videos[:, :1])
        for start in range(1, cfg.frames, 8):
            scorer.update(videos[:, start : start + 8])

    sync = torch.cuda.synchronize if device.type == "cuda" else None
    times = interleaved({"per-window": per_window, "incremental": incremental}, repeats=cfg.repeats, sync=sync)
    print(f"{cfg.preset} on {cfg.device}: {cfg.videos} videos x {len(ends)} windows of 8 frames, {cfg.image_size} px; "
          f"{cfg.repeats} interleaved repeats after one warm-up run per mode, median [min–max]")
    for name, label in (("per-window", "per-window preprocessing"), ("incremental", "incremental")):
        rate = total / statistics.median(times[name])
        print(f"{label:24s}: {rate:9.1f} windows/s  {spread(times[name])}")
    print(f"ratio of medians incremental/per-window: {ratio_of_medians(times['per-window'], times['incremental']):.2f}x")


if __name__ == "__main__":
    main()
