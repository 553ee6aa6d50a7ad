"""Training checkpoints: ``<output>/checkpoints/step_NNNNNNN/`` with model.safetensors (full weights, loadable by
``opensora.checkpoint_io``), ema.safetensors (fp32, what inference uses), optimizer.pt (optimizer + LR schedule) and
state.json (step). A checkpoint is written into a temporary folder and renamed, so a crash never leaves a partial one
that resume would pick up.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

STEP_PREFIX = "step_"


def checkpoint_dir(output: str | Path, step: int) -> Path:
    return Path(output) / "checkpoints" / f"{STEP_PREFIX}{step:07d}"


def newest_complete(root: Path, prefix: str) -> Path | None:
    """The newest ``<prefix><number>`` folder under ``root`` that holds a state.json, or None."""
    done = [p for p in root.glob(f"{prefix}*") if p.is_dir() and (p / "state.json").is_file()]
    return max(done, key=lambda p: int(p.name.removeprefix(prefix)), default=None)


def write_atomically(final: Path, prefix: str, keep_last: int, write: Callable[[Path], None]) -> Path:
    """``write(folder)`` into a temporary sibling, rename it to ``final``, delete the oldest ``<prefix>*`` siblings
    beyond ``keep_last``."""
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    kept = sorted(
        (p for p in final.parent.glob(f"{prefix}*") if p.is_dir() and not p.name.endswith(".tmp")),
        key=lambda p: int(p.name.removeprefix(prefix)),
    )
    for old in kept[: max(0, len(kept) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(output: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    return newest_complete(Path(output) / "checkpoints", STEP_PREFIX)


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

    def write(folder: Path) -> None:
        save_file({k: v.contiguous() for k, v in model_state.items()}, str(folder / "model.safetensors"))
        save_file({k: v.contiguous() for k, v in ema_state.items()}, str(folder / "ema.safetensors"))
        torch.save({"optimizer": optimizer_state, "scheduler": scheduler_state}, folder / "optimizer.pt")
        (folder / "state.json").write_text(json.dumps({"step": step}) + "\n")

    return write_atomically(checkpoint_dir(output, step), STEP_PREFIX, keep_last, write)


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
