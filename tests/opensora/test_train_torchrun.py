"""The world-model trainer under torchrun when one of its ranks is killed."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from opensora.datasets.shards import write_shards
from opensora.datasets.synthetic import moving_square_episodes


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    write_shards(moving_square_episodes(6, steps=16, seed=1), root / "shards", max_shard_bytes=100_000)
    (root / "stats.json").write_text(json.dumps({"synthetic": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}}}))
    return root


def _torchrun(synthetic: Path, output: Path, max_steps: int, port: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
            "-m", "opensora.train", "--config", "configs/world_model/tiny.yaml", "parallel=ddp",
            f"data.shards=[{synthetic / 'shards'}]", f"data.stats={synthetic / 'stats.json'}", f"output={output}",
            "data.batch_size=2", "val_windows=0", "log_every=1", "ckpt_every=2", f"max_steps={max_steps}"]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _rank_process(parent: int, rank: int) -> int | None:
    """The pid of the child of ``parent`` that runs as torchrun rank ``rank``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


def _completed_rows(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


@pytest.mark.slow
def test_a_killed_rank_ends_the_job_naming_it_and_a_rerun_resumes_exactly(synthetic, tmp_path):
    killed = tmp_path / "killed"
    launcher = subprocess.Popen(_torchrun(synthetic, killed, 100_000, 29671), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=ENV)
    deadline = time.monotonic() + 300
    while _completed_rows(killed / "metrics.jsonl") < 5:
        assert launcher.poll() is None and time.monotonic() < deadline, "the torchrun job did not start training"
        time.sleep(0.2)
    victim = _rank_process(launcher.pid, 1)
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    out, _ = launcher.communicate(timeout=180)
    assert launcher.returncode != 0
    root_cause = out[out.index("Root Cause"):]
    assert "rank      : 1" in root_cause and "SIGKILL" in root_cause

    saved = sorted(p for p in (killed / "checkpoints").iterdir() if p.name.startswith("step_") and "." not in p.name)
    resumed_from = int(saved[-1].name.removeprefix("step_"))
    final = resumed_from + 3
    rerun = subprocess.run(_torchrun(synthetic, killed, final, 29672), capture_output=True, text=True, env=ENV,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"at step {resumed_from}" in rerun.stdout + rerun.stderr
    straight = tmp_path / "straight"
    subprocess.run(_torchrun(synthetic, straight, final, 29673), check=True, capture_output=True, env=ENV,
                   timeout=300)
    for name in ("model.safetensors", "ema.safetensors"):
        a = load_file(straight / "checkpoints" / f"step_{final:07d}" / name)
        b = load_file(killed / "checkpoints" / f"step_{final:07d}" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    steps = [json.loads(line)["step"] for line in (killed / "metrics.jsonl").open()]
    assert steps == list(range(1, final + 1))
