"""Collect the real-rollout budget: roll the policy (sampling at temperature 1.6) in the simulator over the initial
states for ``epochs`` passes and write episode shards in the world-model training format (P = states × epochs).

    python scripts/collect_rollouts.py task=square policy_path=checkpoint_files/SFT_models/square epochs=1 \\
        output=data_files/example_rollouts/square_128_demos
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from opensora.datasets.shards import write_shards
from opensora.errors import reports_errors
from wmpo.cli import parse_config
from wmpo.rollout.collection import collect_rollouts
from wmpo.envs.vector import VectorRunner
from wmpo.rollout.evaluation import load_policy_and_states
from wmpo.tasks import get_task


@dataclass
class Config:
    task: str = "square"
    """Task."""
    policy_path: str = "checkpoint_files/SFT_models/square"
    """Policy directory."""
    initial_states: str | None = None
    """Initial-state folder; default data_files/initial_states/<task>."""
    states: int = 128
    """Initial states per pass."""
    epochs: int = 1
    """Passes over the states (P = states × epochs)."""
    temperature: float = 1.6
    """Sampling temperature."""
    seed: int = 0
    """Seed of the policy sampling."""
    workers: int = 8
    """Parallel simulator processes."""
    backend: str = "auto"
    """Simulation backend."""
    output: str = "data_files/example_rollouts/square_128_demos"
    """Shard folder."""
    device: str = "auto"
    """cpu, cuda or auto."""


@reports_errors
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_config(Config, doc=__doc__)
    task = get_task(cfg.task)
    policy, states = load_policy_and_states(task, cfg.policy_path, cfg.initial_states, cfg.device)
    count = min(cfg.states, len(states))
    runner = VectorRunner(task, backend=cfg.backend, num_workers=min(cfg.workers, count))
    try:
        episodes = collect_rollouts(policy, runner, states.states[:count], cfg.epochs, cfg.temperature, cfg.seed)
    finally:
        runner.close()
    paths = write_shards(episodes, cfg.output)
    success = float(np.mean([e.meta["complete"] for e in episodes]))
    summary = {"episodes": len(episodes), "success_rate": success, "shards": [str(p) for p in paths]}
    (Path(cfg.output) / "collection.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {len(episodes)} episodes ({success:.2f} successful) to {cfg.output}")


if __name__ == "__main__":
    main()
