"""Optional LoRA on every linear layer of the policy (vision towers, projector, Llama) except the LM head."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from wmpo.policy.checkpoint import save_model
from wmpo.policy.modeling import OpenVLAForActionPrediction


def linear_layer_names(model: nn.Module, exclude: tuple[str, ...] = ("language_model.lm_head",)) -> list[str]:
    """Qualified names of the ``nn.Linear`` modules LoRA adapts."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Linear) and name not in exclude]


def add_lora(model: OpenVLAForActionPrediction, rank: int = 32, alpha: int | None = None, dropout: float = 0.0):
    """Wrap ``model`` with LoRA adapters (rank ``rank``, scale alpha/rank; alpha defaults to min(rank, 16)).

    Only the adapter weights stay trainable. The returned peft model forwards exactly like ``model``.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else min(rank, 16),
        lora_dropout=dropout,
        target_modules=linear_layer_names(model),
        init_lora_weights="gaussian",
    )
    return get_peft_model(model, config)


def merge_lora(peft_model) -> OpenVLAForActionPrediction:
    """Fold the adapters into the base weights and return the plain model (released parameter names)."""
    merged = peft_model.merge_and_unload()
    if not isinstance(merged, OpenVLAForActionPrediction):
        raise TypeError(f"merging produced {type(merged).__name__}, expected OpenVLAForActionPrediction")
    return merged


def merge_and_save(peft_model, path: str | Path, tokenizer=None) -> OpenVLAForActionPrediction:
    """Merge the adapters and write the merged policy in the released layout."""
    merged = merge_lora(peft_model)
    save_model(merged, path, tokenizer=tokenizer)
    return merged
