"""Fit the linear patch autoencoder (vae_preset=linear-patch) on the frames of episode shards.

    python scripts/fit_patch_autoencoder.py shards=[data_files/episodes/lift] output=outputs/patch_autoencoder \\
        factor=8 channels=32

Writes OUTPUT/config.json and OUTPUT/linear_patch.safetensors; train the world model with
``model.vae_preset=linear-patch model.vae_path=OUTPUT``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opensora.datasets.shards import index_episodes
from opensora.errors import reports_errors
from opensora.models.patch_autoencoder import LinearPatchVAE
from wmpo.cli import parse_config


@dataclass
class Config:
    shards: list[str] = field(default_factory=list)
    """Episode shard folders or globs."""
    output: str = "outputs/patch_autoencoder"
    """Folder to write."""
    factor: int = 8
    """Block size in pixels (the latent's downsampling)."""
    channels: int = 32
    """Principal components kept (latent channels; the small-patch world model takes 32)."""
    frame_stride: int = 2
    """Use every frame_stride-th frame of each episode."""


@reports_errors
def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    refs = index_episodes(list(cfg.shards))
    if not refs:
        raise SystemExit(f"error: no episodes in shards={cfg.shards}")
    vae, summary = LinearPatchVAE.fit_episodes(refs, cfg.factor, cfg.channels, cfg.frame_stride)
    vae.save(cfg.output, **summary)
    print(f"{cfg.output}: {cfg.channels} components of {cfg.factor}x{cfg.factor} blocks from {summary['frames']} "
          f"frames keep {summary['explained_variance']:.4f} of the variance")


if __name__ == "__main__":
    main()
