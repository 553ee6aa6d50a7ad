"""Policy throughput: actions per second of one parallel-decoding query at batch sizes 1 and 16, and their ratio.

    python scripts/bench_policy.py                       # tiny preset on the CPU
    python scripts/bench_policy.py preset=7b device=cuda dtype=bfloat16 batch_sizes=[1,16] backward=true \
        backward_batch=8

Weights are random (the cost does not depend on them). With ``backward=true`` it also times one ``log_probs``
forward+backward (at the largest batch size unless ``backward_batch`` says). On CUDA the peak memory of each
measurement is printed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from wmpo.benchmarking import interleaved, spread
from wmpo.cli import parse_config
from wmpo.policy import VLAPolicy, build_model, preset
from wmpo.policy.modeling import ACTION_CHUNK
from wmpo.policy.tiny import TINY_VOCAB_SIZE, build_tiny_tokenizer, unit_norm_stats

INSTRUCTION = "insert the square into the stick"


@dataclass
class Config:
    preset: str = "tiny"
    """Policy size: tiny or 7b."""
    device: str = "cpu"
    """Device to run on (cpu, cuda)."""
    dtype: str = "float32"
    """Weight and activation dtype (float32, bfloat16)."""
    batch_sizes: list[int] = field(default_factory=lambda: [1, 16])
    """Batch sizes to time; the first is the baseline of the printed ratios."""
    repeats: int = 5
    """Timed queries per batch size, interleaved across batch sizes, after one warm-up query each."""
    backward: bool = False
    """Also time one log_probs forward+backward (at ``backward_batch``)."""
    backward_batch: int = 0
    """Batch size of the timed forward+backward; 0: the largest of ``batch_sizes``."""


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak(device: torch.device) -> str:
    if device.type != "cuda":
        return ""
    peak = torch.cuda.max_memory_allocated(device) / 1024**3
    torch.cuda.reset_peak_memory_stats(device)
    return f", peak memory {peak:.1f} GiB"


def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    device = torch.device(cfg.device)
    dtype = getattr(torch, cfg.dtype)
    config = preset(cfg.preset, vocab_size=TINY_VOCAB_SIZE if cfg.preset == "tiny" else None)
    config.norm_stats = unit_norm_stats()
    start = time.perf_counter()
    model = build_model(config, device=device, dtype=dtype).eval()
    print(f"built {cfg.preset} ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, {dtype}) "
          f"on {device} in {time.perf_counter() - start:.1f} s")
    policy = VLAPolicy(model, build_tiny_tokenizer(), "square_d0_300_demos")
    if cfg.preset != "tiny":
        print("(prompt tokenized with the tiny character tokenizer: longer than the Llama prompt, so conservative)")
    rng = np.random.default_rng(0)
    generator = torch.Generator(device=device).manual_seed(0)
    inputs = {batch: rng.integers(0, 256, size=(batch, 256, 256, 3), dtype=np.uint8) for batch in cfg.batch_sizes}

    def query(batch: int):
        def run() -> None:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                policy.predict(inputs[batch], [INSTRUCTION] * batch, temperature=1.6, generator=generator)

        return run

    modes = {batch: query(batch) for batch in cfg.batch_sizes}
    peaks = {}
    for batch, run in modes.items():  # one untimed call per batch size for its peak memory
        _peak(device)
        run()
        _sync(device)
        peaks[batch] = _peak(device)
    times = interleaved(modes, repeats=cfg.repeats, warmup=0, sync=lambda: _sync(device))
    print(f"{cfg.repeats} interleaved repeats per batch size after one warm-up call each, median [min–max] per query")
    rates = {}
    for batch in cfg.batch_sizes:
        seconds = statistics.median(times[batch])
        rates[batch] = batch * ACTION_CHUNK / seconds
        print(f"batch {batch:3d}: {rates[batch]:9.1f} actions/s  {spread(times[batch])}{peaks[batch]}")
    base = cfg.batch_sizes[0]
    for batch in cfg.batch_sizes[1:]:
        print(f"ratio batch {batch} / batch {base}: {rates[batch] / rates[base]:.2f}x actions/s (ratio of medians "
              f"per action)")
    if cfg.backward:
        batch = cfg.backward_batch or max(cfg.batch_sizes)
        frames = rng.integers(0, 256, size=(batch, 256, 256, 3), dtype=np.uint8)
        out = policy.predict(frames, [INSTRUCTION] * batch, temperature=1.6, generator=generator)
        model.train()
        _peak(device)
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            log_probs, _ = policy.log_probs(out.inputs, out.responses, temperature=1.6)
        log_probs.mean().backward()
        _sync(device)
        print(f"log_probs forward+backward at batch {batch}: {time.perf_counter() - start:.2f} s{_peak(device)}")


if __name__ == "__main__":
    main()
