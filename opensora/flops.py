"""FLOPs of the denoiser generating one chunk, derived from the model config: the sampler runs once on the meta
device (no memory, no arithmetic) under PyTorch's FLOP counter, so the count includes attention on every device
(a CPU's fused attention kernel is not counted when it really runs)."""

from __future__ import annotations

from functools import lru_cache

import torch

from opensora.models.stdit3 import STDiT3, STDiT3Config
from opensora.schedulers.rflow import RFlow, RFlowConfig


def chunk_flops(config: STDiT3Config, latent_shape: tuple[int, ...], chunk: int, steps: int, use_cache: bool,
                batch: int = 1) -> int:
    """Floating-point operations (matrix products and attention, 2 per multiply-add) of sampling ``chunk`` latent
    frames for ``batch`` trajectories from context latents of shape (C, Tc, h, w) with ``steps`` Euler steps."""
    fields = tuple(sorted(config.to_dict().items()))
    return batch * _one_row(fields, tuple(latent_shape), chunk, steps, use_cache)


@lru_cache(maxsize=64)
def _one_row(fields: tuple, latent_shape: tuple[int, ...], chunk: int, steps: int, use_cache: bool) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    channels, context_frames, height, width = latent_shape
    with torch.device("meta"):
        model = STDiT3(STDiT3Config(**dict(fields)))
        scheduler = RFlow(RFlowConfig(num_sampling_steps=steps, use_timestep_transform=False))
        context = torch.zeros(1, channels, context_frames, height, width)
        actions = torch.zeros(1, chunk, model.config.action_dim)
        noise = torch.zeros(1, channels, chunk, height, width)
        with FlopCounterMode(display=False) as counter:
            scheduler.sample(model, context, actions, noise, height, width, use_cache=use_cache)
    return int(counter.get_total_flops())
