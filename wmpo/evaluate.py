"""Greedy evaluation of a policy checkpoint in the real simulator.

    python -m wmpo.evaluate task=square policy_path=checkpoint_files/WMPO_models/square/P_128 states=128 workers=8
Writes eval_results.json (success rate, per-episode outcome and finish step) and a few mp4s to ``output``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from opensora.errors import reports_errors
from opensora.training.settings import SettingError
from wmpo.cli import parse_config
from wmpo.rollout.evaluation import evaluate_policy, load_policy_and_states
from wmpo.policy.checkpoint import policy_folder_problem
from wmpo.tasks import get_task


@dataclass
class Config:
    task: str = "square"
    """Task to evaluate on."""
    policy_path: str = "checkpoint_files/WMPO_models/square/P_128"
    """Policy directory (released layout, or a trainer checkpoint's actor/ folder)."""
    initial_states: str | None = None
    """Initial-state folder; default data_files/initial_states/<task>."""
    states: int = 128
    """Episodes (the first N initial states)."""
    workers: int = 8
    """Parallel simulator processes."""
    backend: str = "auto"
    """Simulation backend (auto, builtin, mimicgen)."""
    output: str | None = None
    """Result folder; default outputs/eval/<task>."""
    videos: int = 8
    """Episodes saved as mp4."""
    device: str = "auto"
    """cpu, cuda or auto."""


def check_paths(cfg: Config, task: str) -> None:
    """Fail in one line naming the missing folder and how to get it, before anything is loaded."""
    problem = policy_folder_problem(cfg.policy_path)
    if problem:
        fetch = f"the released policy: python download_hf.py --tasks {task} --what wmpo --budget 128"
        hint = fetch if problem == "no such folder" else "a trainer checkpoint's policy is its actor/ subfolder"
        raise SettingError(f"policy_path={cfg.policy_path}: {problem} ({hint})")
    states = Path(cfg.initial_states or f"data_files/initial_states/{task}")
    if not states.is_dir():
        raise SettingError(f"initial_states={states}: no such folder (make one with "
                           f"scripts/make_initial_states.py task={task} n=128 seed=0)")


@reports_errors
def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_config(Config, doc=__doc__)
    task = get_task(cfg.task)
    check_paths(cfg, task.name)
    policy, states = load_policy_and_states(task, cfg.policy_path, cfg.initial_states, cfg.device, bf16_on_cuda=True)
    output = Path(cfg.output or f"outputs/eval/{task.name}")

    def predict(frames, instructions):
        return policy.predict(frames, instructions, do_sample=False).actions

    result = evaluate_policy(predict, task, states, cfg.states, cfg.workers, cfg.backend, output, cfg.videos)
    print(f"{task.env_name}: success rate {result['success_rate']:.3f} over {len(result['episodes'])} episodes "
          f"({output / 'eval_results.json'})")


if __name__ == "__main__":
    main()
