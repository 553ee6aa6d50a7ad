"""Real-simulator throughput: episodes per minute with 1 and with 2 parallel workers, and their ratio.

    python scripts/bench_sim.py task=square episodes=4
Each episode runs the task's full horizon with a still arm and renders every step, like a policy rollout.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

from wmpo.benchmarking import interleaved, ratio_of_medians, spread
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
    repeats: int = 3
    """Timed runs per worker count, interleaved, after one untimed warm-up run each."""


def still(task):
    def act(query):
        chunk = np.zeros((len(query.episode_ids), task.action_chunk, task.action_dim))
        chunk[..., 6] = -1.0
        return chunk

    return act


def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    task = get_task(cfg.task)
    states = [state_seed(0, i) for i in range(cfg.episodes)]
    runners = {workers: VectorRunner(task, backend=cfg.backend, num_workers=workers) for workers in (1, 2)}
    try:
        # The warm-up call of each mode pays the first resets and the renderer start.
        times = interleaved({workers: lambda r=runner: r.run(states, still(task), progress=False)
                             for workers, runner in runners.items()}, repeats=cfg.repeats)
    finally:
        for runner in runners.values():
            runner.close()
    print(f"{task.env_name}, {cfg.episodes} episodes of {task.max_steps} steps with rendering; {cfg.repeats} "
          f"interleaved repeats after one warm-up run per mode, median [min–max]")
    for workers in runners:
        rate = 60.0 * cfg.episodes / statistics.median(times[workers])
        print(f"{workers} worker{'s' if workers > 1 else ' '}: {rate:6.2f} episodes/min  {spread(times[workers])}")
    print(f"ratio of medians 2/1: {ratio_of_medians(times[1], times[2]):.2f}x")


if __name__ == "__main__":
    main()
