"""Training checkpoints: ``<output>/checkpoints/step_NNNNNNN/`` with model.safetensors (full weights, loadable by
``opensora.checkpoint_io``), ema.safetensors (fp32, what inference uses), optimizer.pt (optimizer + LR schedule) and
state.json (step), and last manifest.json (every file with its size). A checkpoint is written into a temporary folder
and renamed, so a crash never leaves a partial one that resume would pick up; one damaged later (a file missing or
truncated) fails its manifest check, and resume falls back to the newest complete one.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from opensora.weight_files import load_safetensors

STEP_PREFIX = "step_"
MANIFEST = "manifest.json"
log = logging.getLogger("opensora")


def checkpoint_dir(output: str | Path, step: int) -> Path:
    return Path(output) / "checkpoints" / f"{STEP_PREFIX}{step:07d}"


def numbered(root: Path, prefix: str) -> list[tuple[int, Path]]:
    """``<prefix><digits>`` folders under ``root`` by number (temporary ``*.tmp`` folders are not checkpoints)."""
    found = []
    for path in root.glob(f"{prefix}*"):
        number = path.name.removeprefix(prefix)
        if path.is_dir() and number.isdigit():
            found.append((int(number), path))
    return sorted(found)


def write_manifest(folder: Path) -> None:
    """Every file of the folder with its size, written last: a checkpoint with a valid manifest is complete."""
    files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1) + "\n")


def incompleteness(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete checkpoint, or None. Checkpoints written before manifests existed are
    accepted on their state.json alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return "no such folder"
    if not (folder / "state.json").is_file():
        return "no state.json"
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return f"unreadable {MANIFEST}"
    for name, size in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, {MANIFEST} says {size}"
    return None


def require_complete(folder: str | Path) -> Path:
    problem = incompleteness(folder)
    if problem:
        raise FileNotFoundError(f"{folder}: not a complete checkpoint ({problem})")
    return Path(folder)


def newest_complete(root: Path, prefix: str) -> Path | None:
    """The newest complete ``<prefix><number>`` checkpoint under ``root``, or None; newer incomplete ones are
    skipped with a warning naming what is wrong with them."""
    for _, path in reversed(numbered(root, prefix)):
        problem = incompleteness(path)
        if problem is None:
            return path
        log.warning("skipping checkpoint %s: %s", path, problem)
    return None


def write_atomically(final: Path, prefix: str, keep_last: int, write: Callable[[Path], None]) -> Path:
    """``write(folder)`` into a temporary sibling, add the manifest, rename it to ``final``; then delete the oldest
    complete checkpoints at or below ``final`` beyond ``keep_last`` (incomplete ones and newer ones are left alone)."""
    if keep_last < 1:
        raise ValueError(f"keep_last={keep_last}: must be ≥ 1 (the checkpoint just written would be deleted)")
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        write_manifest(tmp)
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        free = shutil.disk_usage(final.parent).free / 1024**3
        raise OSError(f"writing checkpoint {final} failed ({exc}); {free:.2f} GiB free on {final.parent}; "
                      "the earlier checkpoints are intact") from exc
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    number = int(final.name.removeprefix(prefix))
    older = [path for n, path in numbered(final.parent, prefix) if n <= number and incompleteness(path) is None]
    for old in older[: max(0, len(older) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def drop_rows_after(path: Path, step: int, key: str) -> None:
    """Remove the rows of a metrics.jsonl that a crashed run logged past the checkpoint it resumes from (``key``
    holds a row's step), so the log reads as one uninterrupted run."""
    if not path.is_file():
        return
    rows = [line for line in path.read_text().splitlines() if line.strip()]
    kept = [line for line in rows if json.loads(line).get(key, 0) <= step]
    if len(kept) != len(rows):
        path.write_text("".join(line + "\n" for line in kept))


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
    path = require_complete(path)
    extra = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
    return {
        "step": json.loads((path / "state.json").read_text())["step"],
        "model": load_safetensors(path / "model.safetensors"),
        "ema": load_safetensors(path / "ema.safetensors"),
        "optimizer": extra["optimizer"],
        "scheduler": extra["scheduler"],
    }
