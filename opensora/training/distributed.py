"""Process-group setup shared by the training entry points (world model, policy SFT)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup_distributed(device: str = "auto") -> tuple[int, int, torch.device]:
    """rank, world size and device; a process group under torchrun (NCCL on GPU, gloo on CPU).

    ``device``: ``auto`` (CUDA when available), ``cuda`` or ``cpu``.
    """
    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda" if cuda else "cpu")
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local)
    dist.init_process_group("gloo")
    return dist.get_rank(), dist.get_world_size(), torch.device("cpu")
