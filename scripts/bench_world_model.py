"""World-model throughput: imagined frames per second with the context recomputed at every denoising step (the
released sampler) and with the context computed once per chunk, and their ratio.

    python scripts/bench_world_model.py                                   # tiny on the CPU
    python scripts/bench_world_model.py preset=XL/2 vae=sdxl device=cuda dtype=bfloat16 batch=16

Weights are random (cost does not depend on them). Frames include the VAE decode of each generated chunk.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from omegaconf import OmegaConf

from opensora.world_model import WorldModel, WorldModelSpec


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
    chunks: int = 2
    """Timed chunks per mode (after one warm-up chunk)."""


def frames_per_second(wm: WorldModel, cfg: Config, use_cache: bool) -> float:
    wm.spec.use_cache = use_cache
    device = wm.device
    side = cfg.image_size // wm.vae.downsample
    context = torch.randn(cfg.batch, wm.vae.latent_channels, 4, side, side, device=device)
    actions = torch.rand(cfg.batch, 8, 7, device=device) * 2 - 1
    generators = [torch.Generator(device=device).manual_seed(i) for i in range(cfg.batch)]

    def chunk() -> None:
        nonlocal context
        latents = wm.predict(context, actions, generators)
        wm.decode(latents)
        context = wm.next_context(context, latents)

    chunk()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(cfg.chunks):
        chunk()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return cfg.batch * 8 * cfg.chunks / (time.perf_counter() - start)


def main() -> None:
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.from_cli()))
    spec = WorldModelSpec(model_preset=cfg.preset, vae_preset=cfg.vae, num_sampling_steps=cfg.steps)
    torch.manual_seed(0)
    wm = WorldModel.build(spec, device=cfg.device, dtype=getattr(torch, cfg.dtype))
    with torch.autocast(wm.device.type, dtype=getattr(torch, cfg.dtype), enabled=cfg.dtype != "float32"):
        plain = frames_per_second(wm, cfg, use_cache=False)
        cached = frames_per_second(wm, cfg, use_cache=True)
    print(f"{cfg.preset} + {cfg.vae} VAE, batch {cfg.batch}, {cfg.image_size}px, {cfg.steps} steps, {cfg.device}")
    print(f"plain  (context every step): {plain:8.2f} frames/s")
    print(f"cached (context once/chunk): {cached:8.2f} frames/s")
    print(f"ratio cached/plain: {cached / plain:.2f}x")


if __name__ == "__main__":
    main()
