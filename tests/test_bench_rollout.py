import re
import subprocess
import sys

import pytest


def bench(threshold: float) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "scripts/bench_rollout.py", "groups=1", "repeats=1",
         f"overrides=[imagination.max_steps=16,imagination.min_steps=0,imagination.rm_threshold={threshold}]"],
        check=True, capture_output=True, text=True,
    ).stdout
    assert out.strip().splitlines()[-1].startswith("ratio of medians")
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    for mode in ("released", "ours"):
        split = next(line for line in out.splitlines() if line.startswith(f"  {mode} "))
        parts = re.findall(r"(policy|denoiser|VAE|reward scoring|other) ([0-9.]+) s \(([0-9]+)%\)", split)
        assert [name for name, _, _ in parts] == ["policy", "denoiser", "VAE", "reward scoring", "other"]
        assert all(float(sec) > 0 for _, sec, _ in parts[:4]) and 97 <= sum(int(p) for _, _, p in parts) <= 103
    return {"released": lines["released (recompute, full horizon)"], "ours": lines["cached + stop at success"]}


@pytest.mark.slow
def test_rollout_benchmark_runs_both_modes_over_the_same_trajectories():
    # 4 trajectories, horizon 16: 2 chunks each, 17 frames with the first.
    never = bench(threshold=1.1)
    for line in never.values():
        assert "    68 frames" in line and "8 policy queries" in line and "success 0.000" in line
    always = bench(threshold=-1.0)  # every window succeeds: stopping saves the second chunk
    assert "8 policy queries" in always["released"] and "success 1.000" in always["released"]
    assert "    36 frames" in always["ours"] and "4 policy queries" in always["ours"]
