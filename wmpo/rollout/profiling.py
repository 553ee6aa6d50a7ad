"""Where imagination's time goes: seconds in the policy, the denoiser, the VAE and the reward model, and what the
denoiser achieves (FLOPs derived from the model config, so the count does not depend on the device's kernels)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from opensora.flops import chunk_flops
from wmpo.benchmarking import dense_bf16_peak_tflops, timed_calls
from wmpo.reward.scoring import IncrementalScorer

PHASES = ("policy", "denoiser", "vae", "reward")


class GenerationProfile:
    """Accumulates, over the imagined rollouts measured since the last :meth:`take`, the seconds of each phase and
    the denoiser's FLOPs. On CUDA every timed call synchronizes first, so the seconds are the GPU's."""

    def __init__(self, device: torch.device) -> None:
        self.sync = torch.cuda.synchronize if device.type == "cuda" else None
        self.peak_tflops = dense_bf16_peak_tflops(device)
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.denoiser_flops = 0

    @contextmanager
    def measuring(self, policy, env) -> Iterator[None]:
        """Within the block, time ``policy.predict`` and the imagined environment's parts."""
        wm, counted = env.wm, self._count_flops(env.wm)
        targets = [(policy, "predict", "policy"), (wm, "predict", "denoiser"), (wm, "initial_context", "vae"),
                   (wm, "decode", "vae"), (IncrementalScorer, "update", "reward")]
        wm.predict = counted
        try:
            with timed_calls(targets, self.sync) as phases:
                yield
        finally:
            del wm.predict
        for phase, seconds in phases.items():
            self.seconds[phase] += sum(seconds)

    def _count_flops(self, wm):
        predict = wm.predict

        def counted(context: torch.Tensor, actions: torch.Tensor, generators):
            spec = wm.spec
            self.denoiser_flops += chunk_flops(wm.model.config, tuple(context.shape[1:]), spec.chunk,
                                               spec.num_sampling_steps, spec.use_cache, batch=context.shape[0])
            return predict(context, actions, generators)

        return counted

    def take(self) -> dict[str, float]:
        """This process's seconds per phase, denoiser FLOPs and the device's peak (0 when unknown); resets."""
        record = {f"{phase}_s": seconds for phase, seconds in self.seconds.items()}
        record.update(denoiser_flops=float(self.denoiser_flops), peak_tflops=self.peak_tflops or 0.0)
        self.seconds, self.denoiser_flops = dict.fromkeys(PHASES, 0.0), 0
        return record


def profile_metrics(records: list[dict[str, float]]) -> dict[str, float]:
    """Metrics from the profiles of the processes that imagined side by side (one per worker): seconds per phase
    averaged over processes; the denoiser's TFLOP/s per device and, with a known peak, its MFU."""
    metrics = {f"time/{phase}_s": sum(r[f"{phase}_s"] for r in records) / len(records) for phase in PHASES}
    rates = [r["denoiser_flops"] / r["denoiser_s"] / 1e12 for r in records if r["denoiser_s"] > 0]
    if rates:
        metrics["perf/denoiser_tflops"] = sum(rates) / len(rates)
        peaks = [r["peak_tflops"] for r in records if r["denoiser_s"] > 0]
        if all(peaks):
            metrics["perf/denoiser_mfu"] = sum(rate / peak for rate, peak in zip(rates, peaks)) / len(rates)
    return metrics


ITERATION_PARTS = ("update", "eval", "fidelity", "coevolve")


def time_shares(metrics: dict[str, float], total: float) -> dict[str, float]:
    """Shares of an iteration's ``total`` seconds: each imagination phase, the rest of generation (the simulator
    for the baseline; data movement and the policy's bookkeeping in imagination), the update, the real evaluation,
    the fidelity monitors and the co-evolution refresh; only the parts the iteration had."""
    shares = {"time/iteration_s": total}
    phases = [phase for phase in PHASES if f"time/{phase}_s" in metrics]
    for phase in phases:
        shares[f"time_share/{phase}"] = metrics[f"time/{phase}_s"] / total
    if "time/generate_s" in metrics:
        rest = metrics["time/generate_s"] - sum(metrics[f"time/{phase}_s"] for phase in phases)
        shares["time_share/generate_other"] = max(rest, 0.0) / total
    for part in ITERATION_PARTS:
        if f"time/{part}_s" in metrics:
            shares[f"time_share/{part}"] = metrics[f"time/{part}_s"] / total
    return shares
