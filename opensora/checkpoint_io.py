"""Reading world-model weights in the released formats: ``ema.pt``, one ``.safetensors`` file, or a directory of
sharded safetensors with an index (the layout of a training run's ``model/`` folder).

Loading is strict: names and shapes must be exactly the model's, otherwise the error lists what is missing,
unexpected or mis-shaped. Upstream's ``pos_embed`` entries (recomputed, never learned) are dropped first.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from opensora.errors import UserError
from opensora.weight_files import load_safetensors, load_torch_weights, open_safetensors, stale_index

DROPPED_PREFIXES = ("pos_embed",)


class WeightMismatchError(UserError, RuntimeError):
    """A checkpoint's tensors do not match the model's state dict."""


def _clean(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    cleaned = {}
    for name, tensor in state.items():
        name = name.removeprefix("module.")
        if not name.startswith(DROPPED_PREFIXES):
            cleaned[name] = tensor
    return cleaned


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a world-model checkpoint (``.pt``/``.pth``, ``.safetensors``, or a sharded directory)."""
    path = Path(path)
    if path.is_dir():
        index = next(iter(sorted(path.glob("*.safetensors.index.json"))), None)
        if index is None:
            single = sorted(path.glob("*.safetensors")) or sorted(path.glob("ema.pt")) or sorted(path.glob("*.pt"))
            if len(single) != 1:
                raise FileNotFoundError(
                    f"{path}: no *.safetensors.index.json and not exactly one .safetensors (or ema.pt / .pt) file"
                )
            return read_state_dict(single[0])
        weight_map = json.loads(index.read_text())["weight_map"]
        state = {}
        for shard in sorted(set(weight_map.values())):
            state.update(load_safetensors(path / shard))
        for name, shard in weight_map.items():
            if name not in state:
                raise stale_index(path / shard, index.name, name)
        return _clean(state)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: world-model checkpoint not found")
    if path.suffix == ".safetensors":
        return _clean(load_safetensors(path))
    state = load_torch_weights(path)
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    return _clean(state)


def read_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes only; safetensors headers are read without loading tensors."""
    path = Path(path)
    files = [path] if path.suffix == ".safetensors" else sorted(path.glob("*.safetensors")) if path.is_dir() else []
    if files:
        shapes = {}
        for file in files:
            with open_safetensors(file) as handle:
                for name in handle.keys():
                    shapes[name] = tuple(handle.get_slice(name).get_shape())
        return {k.removeprefix("module."): v for k, v in shapes.items() if not k.startswith(DROPPED_PREFIXES)}
    return {name: tuple(t.shape) for name, t in read_state_dict(path).items()}


def mismatch_report(expected: dict[str, tuple], found: dict[str, tuple]) -> tuple[list, list, list]:
    """Missing names, unexpected names and shape mismatches (``name: checkpoint [..] vs model [..]``)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [
        f"{n}: checkpoint {list(found[n])} vs model {list(expected[n])}"
        for n in sorted(set(expected) & set(found))
        if tuple(found[n]) != tuple(expected[n])
    ]
    return missing, unexpected, mismatched


def format_mismatch(source: str, missing: list, unexpected: list, mismatched: list) -> str:
    def block(title: str, items: list) -> str:
        if not items:
            return ""
        shown = "\n    ".join(items[:20]) + (f"\n    ... and {len(items) - 20} more" if len(items) > 20 else "")
        return f"\n  {title} ({len(items)}):\n    {shown}"

    return (
        f"{source}: checkpoint does not match the model"
        + block("missing keys", missing)
        + block("unexpected keys", unexpected)
        + block("shape mismatches", mismatched)
    )


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Strictly load a checkpoint into ``model`` (tensors are cast to the model's dtypes)."""
    state = read_state_dict(path)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing, unexpected, mismatched = mismatch_report(expected, {n: tuple(t.shape) for n, t in state.items()})
    if missing or unexpected or mismatched:
        raise WeightMismatchError(format_mismatch(str(path), missing, unexpected, mismatched))
    model.load_state_dict(state, strict=True)
