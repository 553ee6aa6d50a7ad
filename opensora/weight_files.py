"""Weight files read with errors that name the file: a truncated or damaged safetensors file, a shard index naming a
tensor its shard lacks, a ``.pt``/``.pth`` that is not a weights file. Each error says what to do instead of
passing on a library's advice (torch's, to load pickles unsafely, is never right for a downloaded checkpoint)."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from opensora.errors import UserError

DAMAGED = "the file is truncated or damaged; download or write it again"


class WeightFileError(UserError, ValueError):
    """A weight file cannot be read; the message names it."""


def open_safetensors(path: str | Path, device: str = "cpu"):
    """``safe_open`` of ``path`` (a context manager), failing with the file's name when its header is unreadable."""
    try:
        return safe_open(str(path), framework="pt", device=device)
    except (SafetensorError, OSError) as exc:
        raise WeightFileError(f"{path}: unreadable safetensors file ({exc}); {DAMAGED}") from None


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise WeightFileError(f"{path}: unreadable safetensors file ({exc}); {DAMAGED}") from None


def stale_index(path: str | Path, index: str, name: str) -> WeightFileError:
    return WeightFileError(f"{path}: {index} lists tensor {name!r} but the file does not hold it (a stale index or "
                           "a mixed-up download); download the checkpoint again")


def tensor_from(handle, path: str | Path, name: str, index: str, shape_only: bool = False):
    """One tensor (or its shape) of an open safetensors file that ``index`` says holds it."""
    try:
        return tuple(handle.get_slice(name).get_shape()) if shape_only else handle.get_tensor(name)
    except SafetensorError:
        raise stale_index(path, index, name) from None


def load_torch_weights(path: str | Path, mmap: bool = False):
    """``torch.load(weights_only=True)`` of a state-dict file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        reason = type(exc).__name__ if isinstance(exc, pickle.UnpicklingError) else str(exc).splitlines()[0]
        raise WeightFileError(f"{path}: not a readable PyTorch weights file ({reason}); {DAMAGED}, or it is not a "
                              "state dict") from None
