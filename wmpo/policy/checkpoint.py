"""Released policy directories: sharded safetensors + index, config.json, tokenizer files, dataset statistics.

Loading is strict: the checkpoint's tensor names and shapes must be exactly the model's, otherwise the error lists
what is missing, unexpected or mis-shaped. Large models are built on the meta device and filled shard by shard, so
a 7B checkpoint never exists twice in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

from opensora.checkpoint_io import format_mismatch, mismatch_report
from opensora.errors import UserError
from opensora.weight_files import open_safetensors, tensor_from
from wmpo.policy.configuration import OpenVLAConfig
from wmpo.policy.modeling import OpenVLAForActionPrediction

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"


class CheckpointMismatchError(UserError, RuntimeError):
    """A checkpoint's tensors do not match the model's parameters."""


def policy_folder_problem(path: str | Path) -> str | None:
    """Why ``path`` is not a policy checkpoint folder, or None."""
    path = Path(path)
    if not path.is_dir():
        return "no such folder"
    if not (path / "config.json").is_file():
        return "no config.json there (not a policy checkpoint folder)"
    return None


def _shard_files(path: Path) -> dict[str, list[str]]:
    """Shard file → names of the tensors it holds."""
    index = path / INDEX_FILE
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        shards: dict[str, list[str]] = {}
        for name, shard in weight_map.items():
            shards.setdefault(shard, []).append(name)
        return shards
    single = path / SINGLE_FILE
    if single.is_file():
        with open_safetensors(single) as handle:
            return {SINGLE_FILE: list(handle.keys())}
    raise FileNotFoundError(f"{path}: neither {INDEX_FILE} nor {SINGLE_FILE} found (not a policy checkpoint directory)")


def read_tensor_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every tensor in a checkpoint directory, from the safetensors headers only."""
    path = Path(path)
    shapes: dict[str, tuple[int, ...]] = {}
    for shard, names in _shard_files(path).items():
        shard_path = path / shard
        if not shard_path.is_file():
            raise FileNotFoundError(f"{shard_path}: shard listed in {INDEX_FILE} is missing")
        with open_safetensors(shard_path) as handle:
            for name in names:
                shapes[name] = tensor_from(handle, shard_path, name, INDEX_FILE, shape_only=True)
    return shapes


def model_shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a model's state dict."""
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def _iter_tensors(path: Path, device: torch.device, dtype: torch.dtype | None) -> Iterator[dict[str, torch.Tensor]]:
    for shard, names in _shard_files(path).items():
        tensors = {}
        with open_safetensors(path / shard, device=str(device)) as handle:
            for name in names:
                tensor = tensor_from(handle, path / shard, name, INDEX_FILE)
                tensors[name] = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
        yield tensors


def load_state_dict_strict(
    model: nn.Module, path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> None:
    """Fill ``model`` (possibly on the meta device) from a checkpoint directory; any key or shape mismatch fails."""
    path = Path(path)
    missing, unexpected, mismatched = mismatch_report(model_shapes(model), read_tensor_shapes(path))
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(format_mismatch(str(path), missing, unexpected, mismatched))
    for tensors in _iter_tensors(path, torch.device(device), dtype):
        model.load_state_dict(tensors, strict=False, assign=True)


def build_model(
    config: OpenVLAConfig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> OpenVLAForActionPrediction:
    """A randomly initialized model, created directly in ``dtype`` on ``device`` (no fp32 copy of a 7B model)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = OpenVLAForActionPrediction(config)
    finally:
        torch.set_default_dtype(previous)
    return model.to(dtype)


def _materialize_buffers(model: OpenVLAForActionPrediction, device: torch.device) -> None:
    """Recreate the non-persistent buffers that a meta-device build leaves empty (rotary frequencies)."""
    llm = model.language_model.model
    llm.rotary_emb = LlamaRotaryEmbedding(llm.config).to(device)
    stale = [name for name, tensor in model.named_buffers() if tensor.is_meta]
    stale += [name for name, tensor in model.named_parameters() if tensor.is_meta]
    if stale:
        raise CheckpointMismatchError(f"tensors left uninitialized after loading: {', '.join(stale[:10])}")


def load_model(
    path: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> OpenVLAForActionPrediction:
    """Load a policy checkpoint directory (config.json + safetensors) strictly."""
    config = OpenVLAConfig.from_pretrained(path)
    with torch.device("meta"):
        model = OpenVLAForActionPrediction(config)
    load_state_dict_strict(model, path, device=device, dtype=dtype)
    _materialize_buffers(model, torch.device(device))
    return model.eval()


def save_model(
    model: OpenVLAForActionPrediction,
    path: str | Path,
    max_shard_bytes: int = 5 * 1024**3,
    tokenizer=None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write the released layout: config.json, dataset_statistics.json, sharded safetensors + index, tokenizer.

    ``state_dict`` replaces ``model.state_dict()``, e.g. the full state gathered from FSDP shards on rank 0.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.config.save(path)
    if model.config.norm_stats:
        (path / "dataset_statistics.json").write_text(json.dumps(model.config.norm_stats, indent=2) + "\n")
    source = model.state_dict() if state_dict is None else state_dict
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in source.items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    for stale in list(path.glob("model*.safetensors")) + [path / INDEX_FILE]:
        stale.unlink(missing_ok=True)
    weight_map = {}
    for number, shard in enumerate(shards, start=1):
        filename = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(path / filename), metadata={"format": "pt"})
        weight_map.update({name: filename for name in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (path / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(path))
