"""World-model throughput: imagined frames per second with the context recomputed at every denoising step (the
released sampler) and with the context computed once per chunk, and their ratio.

    python scripts/bench_world_model.py                                   # tiny on the CPU
    python scripts/bench_world_model.py preset=XL/2 vae=sdxl device=cuda dtype=bfloat16 batch=16

Weights are random (cost does not depend on them). Frames include the VAE decode of each generated chunk.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch
from omegaconf import OmegaConf

from opensora.world_model import WorldModel, WorldModelSpec
from wmpo.benchmarking import interleaved, ratio_of_medians, spread


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
    batch: int = 4
    """Trajectories generated together."""
    image_size: int = 256
    """Frame height and width in pixels."""
    steps: int = 30
    """Denoising steps per chunk."""
    chunks: int = 3
    """Timed chunks per mode, interleaved with the other mode's, after one warm-up chunk each."""


def chunk_mode(wm: WorldModel, cfg: Config, use_cache: bool):
    """A callable generating (and decoding) the next chunk of its own batch of trajectories in one sampler mode."""
    device = wm.device
    side = cfg.image_size // wm.vae.downsample
    state = {"context": torch.randn(cfg.batch, wm.vae.latent_channels, 4, side, side, device=device)}
    actions = torch.rand(cfg.batch, 8, 7, device=device) * 2 - 1
    generators = [torch.Generator(device=device).manual_seed(i) for i in range(cfg.batch)]

    def chunk() -> None:
        wm.spec.use_cache = use_cache
        latents = wm.predict(state["context"], actions, generators)
        wm.decode(latents)
        state["context"] = wm.next_context(state["context"], latents)

    return chunk


def main() -> None:
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.from_cli()))
    spec = WorldModelSpec(model_preset=cfg.preset, vae_preset=cfg.vae, num_sampling_steps=cfg.steps)
    torch.manual_seed(0)
    wm = WorldModel.build(spec, device=cfg.device, dtype=getattr(torch, cfg.dtype))
    modes = {"plain": chunk_mode(wm, cfg, use_cache=False), "cached": chunk_mode(wm, cfg, use_cache=True)}
    sync = torch.cuda.synchronize if wm.device.type == "cuda" else None
    with torch.autocast(wm.device.type, dtype=getattr(torch, cfg.dtype), enabled=cfg.dtype != "float32"):
        times = interleaved(modes, repeats=cfg.chunks, sync=sync)
    print(f"{cfg.preset} + {cfg.vae} VAE, batch {cfg.batch}, {cfg.image_size}px, {cfg.steps} steps, {cfg.device}; "
          f"{cfg.chunks} interleaved chunks per mode after one warm-up chunk each, median [min–max] per chunk")
    for name, label in (("plain", "plain  (context every step)"), ("cached", "cached (context once/chunk)")):
        rate = cfg.batch * 8 / statistics.median(times[name])
        print(f"{label}: {rate:8.2f} frames/s  {spread(times[name])}")
    print(f"ratio of medians cached/plain: {ratio_of_medians(times['plain'], times['cached']):.2f}x")


if __name__ == "__main__":
    main()
