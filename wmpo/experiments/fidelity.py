"""How well the learned world model and reward model stand in for the simulator, measured on real outcomes."""

from __future__ import annotations

import numpy as np
import torch

from wmpo.imagination import ImaginedEnv
from wmpo.policy.policy import VLAPolicy


@torch.no_grad()
def imagine_greedy(policy: VLAPolicy, env: ImaginedEnv, first_frames: torch.Tensor, instruction: str, seed: int,
                   batch_size: int = 16) -> np.ndarray:
    """Imagined success (bool per frame) of the greedy policy from each first frame (N, H, W, 3)."""
    outcomes = []
    for start in range(0, len(first_frames), batch_size):
        rows = first_frames[start : start + batch_size]
        frame = env.reset(rows, [seed * 100_003 + start + i for i in range(len(rows))])
        done = torch.zeros(len(rows), dtype=torch.bool)
        while not bool(done.all()):
            out = policy.predict(frame, [instruction] * len(rows), do_sample=False)
            step = env.step(out.normalized_actions.float().cpu())
            frame, done = env.last_frames, step.done
        outcomes.append(step.success.numpy())
    return np.concatenate(outcomes)


def agreement(imagined: np.ndarray, real: np.ndarray) -> dict:
    """Per-state agreement of imagined and real success, and the confusion counts."""
    imagined, real = np.asarray(imagined, bool), np.asarray(real, bool)
    return {
        "imagined_success_rate": float(imagined.mean()),
        "real_success_rate": float(real.mean()),
        "agreement": float((imagined == real).mean()),
        "confusion": {
            "imagined_success_real_success": int((imagined & real).sum()),
            "imagined_success_real_failure": int((imagined & ~real).sum()),
            "imagined_failure_real_success": int((~imagined & real).sum()),
            "imagined_failure_real_failure": int((~imagined & ~real).sum()),
        },
        "states": int(len(real)),
    }
