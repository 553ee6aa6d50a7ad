"""Simulator worker processes that die, and what the workers print; each test owns its runner, so none shares the
CPUs of another module's."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from wmpo.envs.vector import VectorRunner
from wmpo.rollout.simulated import SampledChunk, simulate_groups

pytestmark = pytest.mark.sim


def fake_sampler(frames, instructions, seeds):
    """Actions and tokens drawn from each row's seed (like the policy's per-row generators), nudged by the frame."""
    rows = [np.random.default_rng(s) for s in seeds]
    actions = np.stack([0.3 * rng.uniform(-1, 1, (8, 7)) for rng in rows])
    actions[..., :3] += 0.01 * frames.reshape(len(frames), -1).mean(axis=1)[:, None, None] / 255
    responses = torch.tensor(np.stack([rng.integers(0, 256, 56) for rng in rows]))
    return SampledChunk(actions, responses, torch.tensor(actions.reshape(len(seeds), -1)[:, :56], dtype=torch.float32))


def test_a_killed_worker_is_replaced_and_its_episode_rerun_to_the_same_trajectories():
    lift = VectorRunner("lift", backend="builtin", num_workers=2, timeout_s=300)
    try:
        prompt = (torch.ones(1, 5, dtype=torch.long), torch.ones(1, 5, dtype=torch.long))
        states = [41, 42]

        def groups(sample):
            return simulate_groups(sample, lift, states, [0, 1], [0, 1], 2, prompt, token_begin=7, seed=3)

        clean_rows = []

        def counting(frames, instructions, seeds):
            clean_rows.append(len(frames))
            return fake_sampler(frames, instructions, seeds)

        clean = groups(counting)
        pids = lift._get([w.pid.remote() for w in lift.workers], "asking for the pids")
        calls = []

        def killing(frames, instructions, seeds):
            calls.append(len(frames))
            if len(calls) == 3:  # mid-episode, after two chunks of the first wave
                os.kill(pids[1], signal.SIGKILL)
            return fake_sampler(frames, instructions, seeds)

        faulted = groups(killing)
        assert lift._get(lift.workers[1].pid.remote(), "asking for the pid") != pids[1]
        assert sum(calls) > sum(clean_rows)  # the killed episode's chunks were queried again
        for name in ("frames", "responses", "old_log_probs", "num_chunks", "complete", "finish_step"):
            assert torch.equal(getattr(faulted, name), getattr(clean, name)), name
    finally:
        lift.close()


def test_simulator_workers_do_not_repeat_robosuites_macro_file_advice():
    script = """
import numpy as np
from wmpo.envs.vector import VectorRunner

runner = VectorRunner("lift", backend="builtin", num_workers=1, timeout_s=300)
runner.run([None], lambda query: np.zeros((1, 8, 7)), progress=False)
runner.close()
print("closed")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    log = out.stdout + out.stderr
    assert out.returncode == 0 and "closed" in out.stdout, log[-3000:]
    assert "No private macro file found" not in log and "setup_macros.py" not in log, log[-3000:]
