"""The fused DINOv2 + SigLIP vision backbone and the GELU MLP projector of OpenVLA.

Both towers are plain timm ViTs built without pretrained weights (the checkpoint carries them). Patch features come
from the second-to-last block of each tower; the two 16×16 grids are concatenated on the feature dimension.
LayerScale parameters are named ``scale_factor`` (not timm's ``gamma``) as in the released checkpoints.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import timm
import torch
from timm.layers import LayerScale as TimmLayerScale
from torch import nn


class LayerScale(nn.Module):
    """Per-channel scale with the parameter name used by the released checkpoints."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale_factor = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


def _rename_layer_scales(model: nn.Module) -> None:
    for block in model.blocks:
        for name in ("ls1", "ls2"):
            old = getattr(block, name)
            if isinstance(old, TimmLayerScale):
                new = LayerScale(old.gamma.shape[0]).to(device=old.gamma.device, dtype=old.gamma.dtype)
                with torch.no_grad():
                    new.scale_factor.copy_(old.gamma)
                setattr(block, name, new)


def _penultimate_patches(tower: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    # The last block's output is never used, so it is not computed.
    (features,) = tower.forward_intermediates(
        pixels, indices=[len(tower.blocks) - 2], intermediates_only=True, output_fmt="NLC", stop_early=True
    )
    return features


def create_tower(timm_id: str, image_size: int, overrides: dict[str, Any] | None) -> nn.Module:
    """One timm ViT whose forward returns the second-to-last block's patch tokens (B, patches, dim).

    The forward is replaced rather than called from outside so that the tower's ``__call__`` (and with it any
    FSDP unit wrapped around the tower) stays on the path.
    """
    model = timm.create_model(timm_id, pretrained=False, num_classes=0, img_size=image_size, **(overrides or {}))
    _rename_layer_scales(model)
    model.forward = partial(_penultimate_patches, model)
    return model


class FusedVisionBackbone(nn.Module):
    """DINOv2 (``featurizer``) on channels 0-2 and SigLIP (``fused_featurizer``) on channels 3-5."""

    def __init__(
        self, timm_ids: list[str], image_sizes: list[int], overrides: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__()
        overrides = overrides or [None, None]
        self.featurizer = create_tower(timm_ids[0], image_sizes[0], overrides[0])
        self.fused_featurizer = create_tower(timm_ids[1], image_sizes[1], overrides[1])
        # The last block, final norm and SigLIP's attention pool never reach the output: frozen, so optimizers
        # and checkpoints of optimizer state do not expect gradients for them.
        for tower in (self.featurizer, self.fused_featurizer):
            for module in (tower.blocks[-1], tower.norm, getattr(tower, "attn_pool", None)):
                if module is not None:
                    module.requires_grad_(False)

    @property
    def embed_dim(self) -> int:
        """Width of the concatenated patch features (1024 + 1152 = 2176 for the released towers)."""
        return self.featurizer.embed_dim + self.fused_featurizer.embed_dim

    @property
    def num_patches(self) -> int:
        """Visual tokens per image (256 at 224 px with patch 14)."""
        return self.featurizer.patch_embed.num_patches

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 6, H, W) → (B, num_patches, embed_dim)."""
        dino, siglip = torch.split(pixel_values, [3, 3], dim=1)
        return torch.cat([self.featurizer(dino), self.fused_featurizer(siglip)], dim=2)


class FusedProjector(nn.Module):
    """vision_dim → 4·vision_dim → llm_dim → llm_dim, GELU between layers."""

    def __init__(self, vision_dim: int, llm_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
        self.fc3 = nn.Linear(llm_dim, llm_dim)
        self.act = nn.GELU()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(features)))))
