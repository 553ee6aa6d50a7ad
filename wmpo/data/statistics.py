"""Action statistics in the OpenVLA ``dataset_statistics.json`` format.

Callers pass each episode's executed actions (its first finish_step). The mask marks the dimensions the policy
un-normalizes: all but the gripper (EEF_POS convention of the MimicGen datasets).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def action_statistics(trajectories: Iterable[np.ndarray], gripper_dims: tuple[int, ...] = (6,)) -> dict:
    """Statistics of (N_i, action_dim) action arrays, one per trajectory."""
    chunks = [np.asarray(actions, dtype=np.float64) for actions in trajectories]
    if not chunks:
        raise ValueError("no episodes to compute statistics from")
    actions = np.concatenate(chunks)
    if not np.isfinite(actions).all():
        step, dim = np.argwhere(~np.isfinite(actions))[0]
        raise ValueError(f"non-finite action {actions[step, dim]} in dimension {dim} (transition {step} of "
                         f"{len(actions)}): statistics would be non-finite")
    mask = [dim not in gripper_dims for dim in range(actions.shape[1])]
    return {
        "action": {
            "mean": actions.mean(0).tolist(),
            "std": actions.std(0).tolist(),
            "max": actions.max(0).tolist(),
            "min": actions.min(0).tolist(),
            "q01": np.quantile(actions, 0.01, axis=0).tolist(),
            "q99": np.quantile(actions, 0.99, axis=0).tolist(),
            "mask": mask,
        },
        "num_transitions": int(len(actions)),
        "num_trajectories": len(chunks),
    }
