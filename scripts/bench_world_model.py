"""World-model throughput: the denoiser generating one chunk with the context recomputed at every denoising step (the
released sampler) and with the context computed once per chunk, at each batch size, with achieved TFLOP/s and MFU;
and with ``compile=MODE`` also the cached sampler with the denoiser compiled (its compile time reported apart);
then the VAE decode of one chunk.

    python scripts/bench_world_model.py                                   # tiny on the CPU
    python scripts/bench_world_model.py preset=XL/2 vae=sdxl device=cuda dtype=bfloat16 batches=[1,8,16] compile=default

Weights are random (cost does not depend on them). FLOPs are derived from the model config (matrix products and
attention; ``opensora.flops``); MFU is against the GPU's dense bf16 peak (n/a on a CPU).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import torch
from omegaconf import OmegaConf

from opensora.flops import chunk_flops
from opensora.world_model import WorldModel, WorldModelSpec
from wmpo.benchmarking import dense_bf16_peak_tflops, interleaved, ratio_of_medians, spread, throughput


@dataclass
class Config:
    preset: str = "tiny"
    """STDiT3 preset (tiny or XL/2)."""
    vae: str = "tiny"
    """VAE preset (tiny or sdxl)."""
    device: str = "cpu"
    """Device."""
    dtype: str = "float32"
    """Weights and activations dtype."""
    batches: list[int] = field(default_factory=lambda: [4])
    """Trajectories generated together; each batch size is timed on its own."""
    image_size: int = 256
    """Frame height and width in pixels."""
    steps: int = 30
    """Denoising steps per chunk."""
    chunks: int = 3
    """Timed chunks per mode, interleaved with the other mode's, after one warm-up chunk each."""
    compile: str = "off"
    """Also time the cached sampler with the denoiser compiled in this mode (default, reduce-overhead,
    max-autotune); off: not."""


def chunk_mode(wm: WorldModel, cfg: Config, batch: int, use_cache: bool):
    """A callable denoising the next chunk of its own batch of trajectories in one sampler mode (no VAE decode)."""
    device = wm.device
    side = cfg.image_size // wm.vae.downsample
    state = {"context": torch.randn(batch, wm.vae.latent_channels, 4, side, side, device=device)}
    actions = torch.rand(batch, 8, 7, device=device) * 2 - 1
    generators = [torch.Generator(device=device).manual_seed(i) for i in range(batch)]

    def chunk() -> None:
        wm.spec.use_cache = use_cache
        latents = wm.predict(state["context"], actions, generators)
        state["context"] = wm.next_context(state["context"], latents)
        state["latents"] = latents

    return chunk, state


def compile_seconds(run, sync) -> float:
    """Seconds of the first call (compilation included)."""
    wait = sync or (lambda: None)
    wait()
    start = time.perf_counter()
    run()
    wait()
    return time.perf_counter() - start


def main() -> None:
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.from_cli()))
    spec = WorldModelSpec(model_preset=cfg.preset, vae_preset=cfg.vae, num_sampling_steps=cfg.steps)
    torch.manual_seed(0)
    wm = WorldModel.build(spec, device=cfg.device, dtype=getattr(torch, cfg.dtype))
    sync = torch.cuda.synchronize if wm.device.type == "cuda" else None
    peak = dense_bf16_peak_tflops(wm.device)
    labels = {"plain": "plain    (context every step)", "cached": "cached   (context once/chunk)"}
    models = {"plain": wm, "cached": wm}
    if cfg.compile != "off":
        labels["compiled"] = f"compiled (cached, {cfg.compile})"
        models["compiled"] = WorldModel(wm.model, wm.vae, wm.scheduler, WorldModelSpec(**{**vars(spec),
                                                                                        "compile": cfg.compile}))
    print(f"{cfg.preset} denoiser, {cfg.image_size}px, {cfg.steps} steps, {cfg.dtype}, {cfg.device}"
          f"{f' ({torch.cuda.get_device_name(wm.device)}, dense bf16 peak {peak:.0f} TFLOP/s)' if peak else ''}; "
          f"{cfg.chunks} interleaved chunks per mode after one warm-up chunk each, median [min–max] per chunk")
    side = cfg.image_size // wm.vae.downsample
    with torch.autocast(wm.device.type, dtype=getattr(torch, cfg.dtype), enabled=cfg.dtype != "float32"):
        for batch in cfg.batches:
            modes = {name: chunk_mode(models[name], cfg, batch, use_cache=name != "plain") for name in labels}
            first = compile_seconds(modes["compiled"][0], sync) if "compiled" in modes else None
            times = interleaved({name: run for name, (run, _) in modes.items()}, repeats=cfg.chunks, sync=sync)
            for name in modes:
                seconds = statistics.median(times[name])
                flops = chunk_flops(wm.model.config, (wm.vae.latent_channels, 4, side, side), 8, cfg.steps,
                                    use_cache=name != "plain", batch=batch)
                print(f"batch {batch:3d} {labels[name]}: {batch * 8 / seconds:9.2f} frames/s  {spread(times[name])}  "
                      f"{throughput(flops, seconds, peak)}")
            print(f"batch {batch:3d} ratio of medians cached/plain: "
                  f"{ratio_of_medians(times['plain'], times['cached']):.2f}x")
            if first is not None:
                print(f"batch {batch:3d} ratio of medians compiled/cached: "
                      f"{ratio_of_medians(times['cached'], times['compiled']):.2f}x; compile time (first chunk at "
                      f"this batch size minus the median) {first - statistics.median(times['compiled']):.1f} s")
        latents = modes["cached"][1]["latents"][:1]
        decode = interleaved({"decode": lambda: wm.decode(latents)}, repeats=cfg.chunks, sync=sync)["decode"]
    print(f"{cfg.vae} VAE decode of one chunk (8 frames, batch 1): {spread(decode)}")


if __name__ == "__main__":
    main()
