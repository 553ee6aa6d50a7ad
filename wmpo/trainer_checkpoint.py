"""Trainer checkpoints: ``<output>/checkpoints/iteration_NNNNNN/`` holding ``actor/`` (the policy in the released
HF layout, loadable by evaluate.sh and ``wmpo.policy.load_policy``), ``optimizer.pt``, ``trainer.pt`` (RNG states,
the kept-group buffer, data position) and ``state.json`` (iteration). Written into a temporary folder and renamed; the
oldest beyond ``keep_last`` are removed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from opensora.training.checkpointing import newest_complete, write_atomically


PREFIX = "iteration_"


def checkpoint_path(output: Path, iteration: int) -> Path:
    return output / "checkpoints" / f"{PREFIX}{iteration:06d}"


def latest_checkpoint(output: Path) -> Path | None:
    return newest_complete(output / "checkpoints", PREFIX)


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def save_checkpoint(
    output: Path, iteration: int, write_policy: Callable[[Path], None], trainer_state: dict, keep_last: int
) -> Path:
    """``write_policy(folder)`` writes actor/ and optimizer.pt; the trainer's own state goes to trainer.pt."""

    def write(folder: Path) -> None:
        write_policy(folder)
        torch.save({"rng": rng_state(), **trainer_state}, folder / "trainer.pt")
        (folder / "state.json").write_text(json.dumps({"iteration": iteration}) + "\n")

    return write_atomically(checkpoint_path(output, iteration), PREFIX, keep_last, write)


def load_trainer_state(path: Path) -> dict:
    state = torch.load(path / "trainer.pt", map_location="cpu", weights_only=False)
    state["iteration"] = json.loads((path / "state.json").read_text())["iteration"]
    return state
