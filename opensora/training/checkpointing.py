"""Training checkpoints: ``<output>/checkpoints/step_NNNNNNN/`` with model.safetensors (full weights, loadable by
``opensora.checkpoint_io``), ema.safetensors (fp32, what inference uses), optimizer.pt (optimizer + LR schedule) and
state.json (step). A checkpoint is written into a temporary folder and renamed, so a crash never leaves a partial one
that resume would pick up.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STEP_PREFIX = "step_"


def checkpoint_dir(output: str | Path, step: int) -> Path:
    return Path(output) / "checkpoints" / f"{STEP_PREFIX}{step:07d}"


def latest_checkpoint(output: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = Path(output) / "checkpoints"
    done = [p for p in root.glob(f"{STEP_PREFIX}*") if p.is_dir() and (p / "state.json").is_file()]
    return max(done, key=lambda p: int(p.name.removeprefix(STEP_PREFIX)), default=None)


def save_checkpoint(
    output: str | Path,
    step: int,
    model_state: dict[str, torch.Tensor],
    ema_state: dict[str, torch.Tensor],
    optimizer_state: dict,
    scheduler_state: dict,
    keep_last: int,
) -> Path:
    """Write one checkpoint atomically and delete the oldest beyond ``keep_last``."""
    final = checkpoint_dir(output, step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model_state.items()}, str(tmp / "model.safetensors"))
    save_file({k: v.contiguous() for k, v in ema_state.items()}, str(tmp / "ema.safetensors"))
    torch.save({"optimizer": optimizer_state, "scheduler": scheduler_state}, tmp / "optimizer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step}) + "\n")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    steps = sorted(
        (p for p in final.parent.glob(f"{STEP_PREFIX}*") if p.is_dir() and not p.name.endswith(".tmp")),
        key=lambda p: int(p.name.removeprefix(STEP_PREFIX)),
    )
    for old in steps[: max(0, len(steps) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: str | Path) -> dict:
    """Everything a resume needs: step, model, ema, optimizer and scheduler states."""
    path = Path(path)
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path}: not a complete training checkpoint (no state.json)")
    extra = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    return {
        "step": json.loads((path / "state.json").read_text())["step"],
        "model": load_file(path / "model.safetensors"),
        "ema": load_file(path / "ema.safetensors"),
        "optimizer": extra["optimizer"],
        "scheduler": extra["scheduler"],
    }
