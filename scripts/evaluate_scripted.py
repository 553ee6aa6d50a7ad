"""Roll the scripted expert of a built-in task in the simulator and report its success rate.

    python scripts/evaluate_scripted.py task=stack_three n=10 workers=2
    python scripts/evaluate_scripted.py task=lift n=20 noise=0.1   # noisy demonstrations, reproducible per expert_seed
Uses data_files/initial_states/<task> when it exists (see make_initial_states.py), else samples n states from seed.
Writes results.jsonl and the first videos (mp4) under out/.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from wmpo.cli import parse_config
from wmpo.envs.initial_states import DEFAULT_ROOT, load_initial_states, state_seed
from wmpo.envs.vector import VectorRunner
from wmpo.tasks import get_task


@dataclass
class Config:
    task: str = "stack_three"
    """Task with a scripted expert (lift, square, stack_three)."""
    n: int = 10
    """Episodes (one per initial state)."""
    workers: int = 2
    """Parallel simulator processes."""
    seed: int = 0
    """Seed for sampling states when no initial-state folder exists (same states as make_initial_states.py)."""
    noise: float = 0.0
    """Std of the Gaussian noise the expert adds to its translation actions (0: the clean expert)."""
    expert_seed: int = 0
    """Seed of the expert's noise (each episode's generator derives from it and the state id)."""
    backend: str = "builtin"
    """Simulation backend; the experts need the built-in tasks' object poses."""
    videos: int = 2
    """Episodes saved as mp4."""
    out: str = "outputs/scripted"
    """Output folder (a sub-folder per task)."""


def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    task = get_task(cfg.task)
    folder = DEFAULT_ROOT / task.name
    if (folder / "meta.json").is_file():
        states = load_initial_states(folder, task=task.name, with_frames=False).states[: cfg.n]
    else:
        states = [state_seed(cfg.seed, i) for i in range(cfg.n)]
    runner = VectorRunner(
        task,
        backend=cfg.backend,
        num_workers=cfg.workers,
        record_frames=cfg.videos > 0,
        scripted_expert=True,
        expert_noise=cfg.noise,
        expert_seed=cfg.expert_seed,
    )
    results = runner.run(states, policy=None)
    runner.close()
    out = Path(cfg.out) / task.name
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.jsonl", "w") as f:
        for r in results:
            f.write(json.dumps({"state_id": r.state_id, "success": r.success, "finish_step": r.finish_step}) + "\n")
    for r in results[: cfg.videos]:
        iio.imwrite(out / f"episode_{r.state_id:04d}.mp4", r.frames, fps=20)
    rate = np.mean([r.success for r in results])
    steps = np.mean([r.finish_step for r in results if r.success]) if rate > 0 else float("nan")
    print(f"{task.env_name}: scripted expert (noise {cfg.noise:g}) succeeded in {sum(r.success for r in results)}/"
          f"{len(results)} episodes (success rate {rate:.2f}, {steps:.1f} steps on average when successful); "
          f"results in {out}")


if __name__ == "__main__":
    main()
