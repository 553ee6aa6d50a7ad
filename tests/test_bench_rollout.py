import subprocess
import sys


def test_rollout_benchmark_compares_both_modes_on_the_same_trajectories():
    out = subprocess.run(
        [sys.executable, "scripts/bench_rollout.py", "groups=1", "repeats=1",
         "overrides=[imagination.max_steps=16,imagination.rm_threshold=1.1]"],
        check=True, capture_output=True, text=True,
    ).stdout
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    released, ours = lines["released (recompute, full horizon)"], lines["cached + stop at success"]
    # Nothing can succeed above threshold 1: both modes generate every chunk of the 4 trajectories.
    for line in (released, ours):
        assert "    68 frames" in line and "8 policy queries" in line and "success 0.000" in line
    assert out.strip().splitlines()[-1].startswith("ratio: ")
