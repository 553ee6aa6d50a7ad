"""fp32 exponential moving average of a model's weights (works on plain, DDP and FSDP2-sharded parameters)."""

from __future__ import annotations

import torch
from torch import nn


def _full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


class EMA:
    """Shadow copies in fp32; frozen parameters and buffers are copied, never averaged."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {name: p.detach().float().clone() for name, p in model.named_parameters()}
        self.trainable = {name for name, p in model.named_parameters() if p.requires_grad}
        persistent = set(model.state_dict())
        self.buffers = {name: b.detach().clone() for name, b in model.named_buffers() if name in persistent}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for name, param in model.named_parameters():
            if name in self.trainable:
                self.shadow[name].lerp_(param.detach().float(), 1.0 - self.decay)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        """Every parameter and persistent buffer as a full CPU tensor (collective under FSDP: call on all ranks)."""
        state = {name: _full(t).cpu() for name, t in self.shadow.items()}
        state.update({name: _full(t).cpu() for name, t in self.buffers.items()})
        return state

    @torch.no_grad()
    def load_full_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore from ``full_state_dict`` output, re-sharding like the live parameters where they are sharded."""
        for name, target in self.shadow.items():
            if name not in state:
                raise KeyError(f"EMA checkpoint lacks {name}")
            source = state[name].float()
            if hasattr(target, "device_mesh"):
                from torch.distributed.tensor import distribute_tensor

                source = distribute_tensor(source.to(target.device), target.device_mesh, target.placements)
            target.copy_(source.to(target.device) if not hasattr(source, "device_mesh") else source)
