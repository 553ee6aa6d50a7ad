"""Real-simulator throughput: episodes per minute with 1 and with 2 parallel workers, and their ratio.

    python scripts/bench_sim.py task=square episodes=4
Each episode runs the task's full horizon with a still arm and renders every step, like a policy rollout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from wmpo.cli import parse_config
from wmpo.envs.initial_states import state_seed
from wmpo.envs.vector import VectorRunner
from wmpo.tasks import get_task


@dataclass
class Config:
    task: str = "square"
    """Task to simulate."""
    episodes: int = 4
    """Episodes per measurement."""
    backend: str = "auto"
    """Simulation backend."""


def episodes_per_minute(task, backend: str, workers: int, episodes: int) -> float:
    runner = VectorRunner(task, backend=backend, num_workers=workers)

    def still(query):
        chunk = np.zeros((len(query.episode_ids), task.action_chunk, task.action_dim))
        chunk[..., 6] = -1.0
        return chunk

    states = [state_seed(0, i) for i in range(episodes)]
    runner.run(states[:workers], still, progress=False)  # warm-up: first resets, renderer start
    start = time.perf_counter()
    runner.run(states, still, progress=False)
    elapsed = time.perf_counter() - start
    runner.close()
    return 60.0 * episodes / elapsed


def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    task = get_task(cfg.task)
    one = episodes_per_minute(task, cfg.backend, 1, cfg.episodes)
    two = episodes_per_minute(task, cfg.backend, 2, cfg.episodes)
    print(f"{task.env_name}, {cfg.episodes} episodes of {task.max_steps} steps with rendering")
    print(f"1 worker : {one:6.2f} episodes/min")
    print(f"2 workers: {two:6.2f} episodes/min")
    print(f"ratio 2/1: {two / one:.2f}x")


if __name__ == "__main__":
    main()
