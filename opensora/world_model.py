"""The world-model step API: frames ↔ latents, and 4 context latents + 8 actions → 8 new latents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from opensora.checkpoint_io import load_weights
from opensora.models.stdit3 import STDiT3, preset
from opensora.models.vae import build_vae, frames_to_video, video_to_frames
from opensora.schedulers.rflow import RFlow, RFlowConfig, seeded_noise


@dataclass
class WorldModelSpec:
    """Where the weights are and how to run them (the content of an inference config)."""

    model_preset: str = "XL/2"
    """STDiT3 architecture preset (XL/2 or tiny)."""
    model_path: str | None = None
    """Weights: ema.pt, a .safetensors file or a sharded directory; None = random initialization."""
    vae_preset: str = "sdxl"
    """sdxl or tiny (KL autoencoders, random when vae_path is None), pixel (exact pixel shuffle) or linear-patch
    (the fitted block autoencoder in vae_path)."""
    vae_path: str | None = None
    """diffusers VAE folder (linear-patch: the fitted autoencoder's folder); None = random vae_preset."""
    num_sampling_steps: int = 30
    """Euler steps per generated chunk."""
    context_frames: int = 4
    """Latent frames the model conditions on."""
    chunk: int = 8
    """Frames generated per step (one per action)."""
    vae_micro_batch: int = 64
    """Frames per VAE encoder/decoder call."""
    use_cache: bool = True
    """Compute the context frames once per chunk instead of at every denoising step."""
    use_timestep_transform: bool = True
    """Resolution shift of the sampling timesteps (must match training; identity at 256×256)."""
    compile: str = "off"
    """Compile the denoiser's per-step calls with ``torch.compile``: off, or a compile mode (default,
    reduce-overhead: CUDA graphs of the fixed-shape steps, max-autotune). The first calls at each new batch size
    pay the compile time."""


COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


class CompiledDenoiser:
    """The calls the sampler makes on an STDiT3, each compiled; the module and its weights stay shared, so loading
    other weights into the module is seen by the compiled calls."""

    def __init__(self, model: STDiT3, mode: str) -> None:
        self.model = model
        self.encode_context = torch.compile(model.encode_context, mode=mode)
        self.forward_targets = torch.compile(model.forward_targets, mode=mode)
        self.forward = torch.compile(model.forward, mode=mode)

    def __call__(self, *args, **kwargs) -> torch.Tensor:
        return self.forward(*args, **kwargs)


class WorldModel:
    """STDiT3 + per-frame VAE + rectified-flow sampler."""

    def __init__(self, model: STDiT3, vae: torch.nn.Module, scheduler: RFlow, spec: WorldModelSpec) -> None:
        self.model = model.eval()
        self.vae = vae.eval()
        self.scheduler = scheduler
        self.spec = spec
        if spec.compile not in COMPILE_MODES:
            raise ValueError(f"world model compile={spec.compile!r}: expected one of {', '.join(COMPILE_MODES)}")
        self.denoiser = self.model if spec.compile == "off" else CompiledDenoiser(self.model, spec.compile)

    @classmethod
    def build(
        cls, spec: WorldModelSpec, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> WorldModel:
        model = STDiT3(preset(spec.model_preset))
        if spec.model_path:
            load_weights(model, spec.model_path)
        vae = build_vae(spec.vae_preset, spec.vae_path, spec.vae_micro_batch)
        scheduler = RFlow(
            RFlowConfig(num_sampling_steps=spec.num_sampling_steps, use_timestep_transform=spec.use_timestep_transform)
        )
        return cls(model.to(device, dtype), vae.to(device, dtype), scheduler, spec)

    @property
    def device(self) -> torch.device:
        return self.model.x_embedder.proj.weight.device

    @torch.no_grad()
    def encode(
        self, frames: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator] | None = None
    ) -> torch.Tensor:
        """uint8 frames (B, T, H, W, 3) → latents (B, C, T, h, w) (posterior samples)."""
        return self.vae.encode(frames_to_video(frames.to(self.device)), generator=generator).float()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents (B, C, T, h, w) → uint8 frames (B, T, H, W, 3)."""
        return video_to_frames(self.vae.decode(latents))

    @torch.no_grad()
    def initial_context(
        self, first_frames: torch.Tensor, generator: torch.Generator | Sequence[torch.Generator] | None = None
    ) -> torch.Tensor:
        """uint8 (B, H, W, 3) → (B, C, context_frames, h, w): one latent sample per frame, repeated."""
        latent = self.encode(first_frames[:, None], generator)
        return latent.expand(-1, -1, self.spec.context_frames, -1, -1).contiguous()

    @torch.no_grad()
    def predict(
        self, context: torch.Tensor, actions: torch.Tensor, generators: Sequence[torch.Generator]
    ) -> torch.Tensor:
        """Context latents (B, C, 4, h, w) + normalized actions (B, 8, 7) → next latents (B, C, 8, h, w).

        ``generators`` holds one generator per row: a trajectory's noise does not depend on its batch-mates.
        """
        batch, channels, _, height, width = context.shape
        if actions.shape[:2] != (batch, self.spec.chunk):
            raise ValueError(f"actions must be (B={batch}, {self.spec.chunk}, dim), got {tuple(actions.shape)}")
        noise = seeded_noise((batch, channels, self.spec.chunk, height, width), generators, self.device)
        scale = self.vae.downsample
        return self.scheduler.sample(
            self.denoiser,
            context.to(self.device),
            actions.to(self.device),
            noise,
            height * scale,
            width * scale,
            use_cache=self.spec.use_cache,
        )

    def next_context(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        """The latest ``context_frames`` latents (generated latents are reused, not re-encoded from pixels)."""
        return torch.cat([context, latents], dim=2)[:, :, -self.spec.context_frames :]
