"""Run logs: console lines, metrics.jsonl, optional TensorBoard and Weights & Biases, and mp4 videos."""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np

from opensora.training.checkpointing import drop_rows_after

log = logging.getLogger("wmpo")


class MetricLogger:
    """Writes one JSON line per iteration; mirrors scalars to TensorBoard / W&B when enabled."""

    def __init__(self, output: Path, tensorboard: bool = False, wandb_project: str | None = None, config=None,
                 resume_at: int | None = None):
        output.mkdir(parents=True, exist_ok=True)
        if resume_at is not None:
            drop_rows_after(output / "metrics.jsonl", resume_at, key="iteration")
        self.file = open(output / "metrics.jsonl", "a")
        self.tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(output / "tensorboard"))
        self.wandb = None
        if wandb_project:
            if not os.environ.get("WANDB_API_KEY") and not os.environ.get("WANDB_MODE"):
                log.warning("wandb_project is set but WANDB_API_KEY is not; W&B logging is off")
            else:
                import wandb

                # One W&B run per run directory: a resumed run keeps logging into it.
                id_file = output / "wandb_run_id"
                run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
                id_file.write_text(run_id + "\n")
                self.wandb = wandb.init(project=wandb_project, dir=str(output), config=config, id=run_id,
                                        resume="allow")

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"iteration": step, **{k: float(v) for k, v in metrics.items()}}
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(key, value, step)
        if self.wandb is not None:
            self.wandb.log(metrics, step=step)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if not k.startswith("time/"))
        log.info("iteration %d: %s", step, shown)

    def close(self) -> None:
        self.file.close()
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()


def write_video(
    path: Path, frames: np.ndarray, fps: int = 20, caption: str | list[str] | None = None
) -> Path:
    """uint8 (T, H, W, 3) → mp4; ``caption`` (one text, or one per frame) is drawn into the top-left corner."""
    import imageio.v3 as iio

    frames = np.ascontiguousarray(frames)
    if caption:
        import cv2

        texts = [caption] * len(frames) if isinstance(caption, str) else caption
        scale = max(0.25, frames.shape[2] / 640)
        frames = frames.copy()
        for frame, text in zip(frames, texts):
            cv2.putText(frame, text, (2, int(24 * scale) + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                        cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, frames, fps=fps, codec="libx264", macro_block_size=1)
    return path
