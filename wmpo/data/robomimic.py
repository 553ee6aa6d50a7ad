"""Episodes from robomimic / MimicGen HDF5 files (``data/demo_i/{obs/<camera>_image, actions, ...}``).

A demo with T actions has T observations; its ``next_obs`` supplies the observation after the last action, giving
the T+1 frames of an episode (frame k+1 follows action k). Without ``next_obs`` the last action is dropped. Image
orientation and size are the caller's explicit choice: robosuite renders bottom-up (OpenGL), and datasets differ in
whether they stored the raw render, so ``flip`` must be decided per dataset by looking at a frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from opensora.datasets.shards import Episode
from wmpo.data.frames import resize_frames


def _demo_order(names) -> list[str]:
    return sorted(names, key=lambda n: int(n.split("_")[-1]) if n.split("_")[-1].isdigit() else n)


def read_demos(
    path: str | Path, camera: str = "agentview", flip: bool = False, size: int | None = None, complete: bool = True
) -> Iterator[Episode]:
    """Every demo of an HDF5 file as an Episode (meta: finish_step, complete, source, demo, model_file)."""
    import h5py

    path = Path(path)
    key = f"obs/{camera}_image"
    with h5py.File(path, "r") as handle:
        if "data" not in handle:
            raise KeyError(f"{path}: no 'data' group (not a robomimic dataset)")
        for name in _demo_order(handle["data"].keys()):
            demo = handle["data"][name]
            if key not in demo:
                raise KeyError(f"{path}: {name} has no {key} (available: {', '.join(demo['obs'].keys())})")
            frames = np.asarray(demo[key])
            actions = np.asarray(demo["actions"], dtype=np.float32)
            next_key = f"next_obs/{camera}_image"
            if next_key in demo:
                frames = np.concatenate([frames, np.asarray(demo[next_key][-1:])])
            else:
                actions = actions[: len(frames) - 1]
            if flip:
                frames = frames[:, ::-1].copy()
            if size is not None:
                frames = resize_frames(frames, size)
            model_file = demo.attrs.get("model_file", "")
            meta = {
                "finish_step": len(actions),
                "complete": complete,
                "source": str(path),
                "demo": name,
                "model_file": model_file if isinstance(model_file, str) else model_file.decode(),
            }
            yield Episode(f"{path.stem}_{name}", frames.astype(np.uint8), actions, meta)
