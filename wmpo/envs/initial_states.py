"""Initial-state sets: robomimic states plus the first frames that imagined rollouts start from.

Layout of ``data_files/initial_states/<task>/``::

    meta.json       task, env name, backend, seed, count, flattened-state size
    states.npz      "states" (N, D) float64, "model_index" (N,) int64, "models" unique MJCF XML strings
    frames/0000.png upright task-camera image (256x256; 64x64 for lift) after the settle steps, one per state

Most states of a task share one MJCF model, so each distinct XML is stored once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from opensora.errors import UserError
from wmpo.tasks import get_task

DEFAULT_ROOT = Path("data_files/initial_states")


class StateFileError(UserError, ValueError):
    """An initial-state folder that is missing, corrupt, or written for something else."""


@dataclass
class InitialStates:
    """Loaded initial states of one task."""

    task: str
    backend: str
    seed: int
    states: list[dict]
    """robomimic states ``{"model": xml, "states": flat}``, in state-id order."""
    frames: np.ndarray
    """(N, H, W, 3) uint8 first frames."""

    def __len__(self) -> int:
        return len(self.states)


def save_initial_states(folder: Path, task: str, backend: str, seed: int, states: list[dict], frames: np.ndarray) -> None:
    """Write ``states`` and their first ``frames`` in the layout above (overwrites the folder's files)."""
    folder = Path(folder)
    (folder / "frames").mkdir(parents=True, exist_ok=True)
    models: list[str] = []
    model_index = []
    for state in states:
        if state["model"] not in models:
            models.append(state["model"])
        model_index.append(models.index(state["model"]))
    flat = np.stack([np.asarray(s["states"], dtype=np.float64) for s in states])
    np.savez_compressed(folder / "states.npz", states=flat, model_index=np.asarray(model_index), models=np.asarray(models))
    for old in (folder / "frames").glob("*.png"):
        old.unlink()
    for i, frame in enumerate(frames):
        iio.imwrite(folder / "frames" / f"{i:04d}.png", frame)
    meta = {
        "task": get_task(task).name,
        "env_name": get_task(task).env_name,
        "backend": backend,
        "seed": seed,
        "count": len(states),
        "state_dim": int(flat.shape[1]),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def load_initial_states(folder: Path, task: str | None = None, with_frames: bool = True) -> InitialStates:
    """Read a folder written by :func:`save_initial_states`; ``task`` (if given) must match what it holds."""
    folder = Path(folder)
    meta_path, states_path = folder / "meta.json", folder / "states.npz"
    for path in (meta_path, states_path):
        if not path.is_file():
            raise StateFileError(
                f"{path} is missing; create initial states with `python scripts/make_initial_states.py task=<task>`"
            )
    try:
        meta = json.loads(meta_path.read_text())
        count, stored_task = int(meta["count"]), meta["task"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise StateFileError(f"{meta_path} is corrupt ({exc})") from exc
    if task is not None and get_task(task).name != stored_task:
        raise StateFileError(f"{folder} holds states of task {stored_task!r}, not {get_task(task).name!r}")
    try:
        with np.load(states_path, allow_pickle=False) as data:
            flat, model_index, models = data["states"], data["model_index"], data["models"]
    except Exception as exc:  # zip, header or missing-key errors all mean the same thing to a user
        raise StateFileError(f"{states_path} is corrupt or not a states file ({type(exc).__name__}: {exc})") from exc
    if flat.ndim != 2 or flat.shape[0] != count or model_index.shape != (count,) or model_index.max(initial=0) >= len(models):
        raise StateFileError(
            f"{states_path}: arrays do not match meta.json (states {flat.shape}, model_index {model_index.shape}, "
            f"{len(models)} models, count {count})"
        )
    if flat.shape[1] != meta.get("state_dim", flat.shape[1]):
        raise StateFileError(f"{states_path}: state size {flat.shape[1]} differs from meta.json's {meta['state_dim']}")
    states = [{"model": str(models[j]), "states": flat[i]} for i, j in enumerate(model_index)]
    frames = np.zeros((0,), dtype=np.uint8)
    if with_frames:
        paths = [folder / "frames" / f"{i:04d}.png" for i in range(count)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise StateFileError(f"{folder}: first frames missing: {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        frames = np.stack([iio.imread(p) for p in paths])
    return InitialStates(stored_task, meta.get("backend", "unknown"), int(meta.get("seed", -1)), states, frames)


def state_seed(seed: int, index: int) -> int:
    """NumPy seed for sampling state ``index`` of the set drawn with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def sample_initial_states(env, n: int, seed: int, progress: bool = True) -> tuple[list[dict], np.ndarray]:
    """Sample ``n`` states of ``env``'s task; state ``i`` depends only on (``seed``, ``i``) and the backend.

    Each state is the robomimic snapshot right after ``env.reset()``; its first frame is rendered the way a rollout
    starts (restore, settle steps, render), so restoring the saved state reproduces the frame.
    """
    from tqdm import tqdm

    states, frames = [], []
    for i in tqdm(range(n), desc=f"initial states ({env.task.name})", disable=not progress):
        state, frame = sample_state(env, state_seed(seed, i))
        states.append(state)
        frames.append(frame)
    return states, np.stack(frames)


def sample_state(env, numpy_seed: int) -> tuple[dict, np.ndarray]:
    """One state drawn after seeding NumPy's global RNG, and its first frame (restore, settle, render)."""
    np.random.seed(numpy_seed)
    env.reset()
    state = env.get_state()
    return state, env.start_episode(state)
