"""Sample initial states of a task and render their first frames (what imagined rollouts start from).

    python scripts/make_initial_states.py task=square n=128 seed=0
writes data_files/initial_states/square/{meta.json,states.npz,frames/*.png}.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from opensora.errors import reports_errors
from wmpo.cli import parse_config
from wmpo.envs import make_env
from wmpo.envs.initial_states import DEFAULT_ROOT, sample_initial_states, save_initial_states
from wmpo.tasks import get_task


@dataclass
class Config:
    task: str = "square"
    """Task name (coffee, square, stack_three, three_piece_assembly, lift)."""
    n: int = 128
    """Number of initial states."""
    seed: int = 0
    """State i depends only on (seed, i) and the backend."""
    backend: str = "auto"
    """Simulation backend: auto, builtin or mimicgen."""
    out: Optional[str] = None
    """Output folder; default data_files/initial_states/<task>."""


@reports_errors
def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    task = get_task(cfg.task)
    out = Path(cfg.out) if cfg.out else DEFAULT_ROOT / task.name
    env = make_env(task, backend=cfg.backend)
    states, frames = sample_initial_states(env, cfg.n, cfg.seed)
    save_initial_states(out, task.name, env.backend, cfg.seed, states, frames)
    env.close()
    origin = f"{env.backend} backend, seed {cfg.seed}"
    print(f"wrote {len(states)} {task.env_name} states ({origin}) and first frames to {out}")


if __name__ == "__main__":
    main()
