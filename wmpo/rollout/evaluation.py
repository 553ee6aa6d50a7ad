"""Greedy evaluation of a policy in the real simulator: one episode per initial state, success within max_steps."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wmpo.envs.initial_states import InitialStates
from wmpo.logging import write_video
from wmpo.policy.policy import VLAPolicy
from wmpo.tasks import TaskSpec


def load_policy_and_states(
    task: TaskSpec, policy_path: str, initial_states: str | None, device: str = "auto", bf16_on_cuda: bool = False
) -> tuple[VLAPolicy, InitialStates]:
    """The policy on ``device`` (``auto``: CUDA when available) and the task's initial states (default folder
    ``data_files/initial_states/<task>``)."""
    import torch

    from wmpo.envs.initial_states import load_initial_states
    from wmpo.policy import load_policy

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" and bf16_on_cuda else torch.float32
    policy = load_policy(policy_path, task.unnorm_key, device=device, dtype=dtype)
    folder = Path(initial_states or f"data_files/initial_states/{task.name}")
    return policy, load_initial_states(folder, task=task.name)


def evaluate_policy(
    predict: Callable[[np.ndarray, list[str]], np.ndarray],
    task: TaskSpec,
    states: InitialStates,
    count: int,
    workers: int,
    backend: str,
    output: Path,
    videos: int = 4,
    runner=None,
    keep_episodes: bool = False,
) -> dict:
    """Greedy ``predict(frames, instructions) → actions (B, 8, 7)`` over the first ``count`` states; success rate,
    per-episode results (eval_results.json) and mp4s in ``output``. A given ``runner`` is used and left open.
    ``keep_episodes`` records every episode's frames and returns the episodes under ``"results"``."""
    from wmpo.envs.vector import VectorRunner

    count = min(count, len(states))

    def act(query) -> np.ndarray:
        return predict(query.frames, query.instructions)

    own = runner is None
    if own:
        # Without videos only the frames the policy sees are rendered (one per chunk).
        runner = VectorRunner(task, backend=backend or states.backend, num_workers=min(workers, count),
                              record_frames=videos > 0 or keep_episodes)
    try:
        episodes = runner.run(states.states[:count], act, state_ids=list(range(count)), progress=True)
    finally:
        if own:
            runner.close()
    output.mkdir(parents=True, exist_ok=True)
    records = [
        {"state_id": ep.state_id, "success": ep.success, "finish_step": ep.finish_step} for ep in episodes
    ]
    success_rate = float(np.mean([ep.success for ep in episodes]))
    (output / "eval_results.json").write_text(json.dumps({"success_rate": success_rate, "episodes": records}, indent=1))
    for ep in episodes[:videos]:
        if ep.frames is not None:
            outcome = "success" if ep.success else "failure"
            write_video(output / f"real_state{ep.state_id}_{outcome}.mp4", ep.frames, caption=outcome)
    result = {"success_rate": success_rate, "episodes": records}
    if keep_episodes:
        result["results"] = episodes
    return result
