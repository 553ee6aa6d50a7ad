"""The prepared GPU check runs every part with tiny sizes on the CPU and prints each table."""

import re
import subprocess

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.slow]


def test_gpu_check_tiny_runs_every_part():
    run = subprocess.run(["bash", "scripts/gpu_check.sh", "--tiny"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    headers = re.findall(r"^== (.+) ==$", out, flags=re.M)
    assert headers == ["denoiser and VAE decode", "compiled denoiser", "reward scoring", "policy", "imagined group",
                       "trainer iteration"]
    for batch in (1, 2):
        for mode in ("plain ", "cached"):
            line = next(row for row in out.splitlines() if row.startswith(f"batch {batch:3d} {mode}"))
            tflops = float(re.search(r"([0-9.]+) TFLOP/s  MFU n/a", line).group(1))
            assert tflops > 0
    assert "VAE decode of one chunk (8 frames, batch 1)" in out
    assert re.search(r"batch   2 ratio of medians compiled/cached: [0-9.]+x; compile time .* [0-9.]+ s", out)
    assert "log_probs forward+backward at batch 2" in out
    assert re.search(r"same action tokens up to the stopping point: [0-4] of 4; .*: [0-9]+ \(of 255\)", out)
    assert "iteration 1: rollout/success" in run.stderr + out
    assert out.strip().endswith("gpu_check.sh: all parts ran")


def test_gpu_check_refuses_an_unknown_option():
    run = subprocess.run(["bash", "scripts/gpu_check.sh", "--fast"], capture_output=True, text=True)
    assert run.returncode == 2 and "--fast" in run.stderr


def test_gpu_check_without_tiny_needs_cuda():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    run = subprocess.run(["bash", "scripts/gpu_check.sh"], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "no CUDA device" in run.stderr
