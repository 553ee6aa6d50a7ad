"""The VideoMAE success classifier: transformers ``VideoMAEForVideoClassification`` configured locally.

The released ``videomae_<task>.pth`` files are plain state dicts saved with older transformers, whose attention
stored its query/value biases as ``q_bias`` / ``v_bias``; current transformers names them ``query.bias`` /
``value.bias``. Loading converts, saving writes the released naming, so files stay interchangeable.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import VideoMAEConfig, VideoMAEForVideoClassification

from opensora.errors import UserError
from opensora.weight_files import load_torch_weights

RELEASED_BIAS_NAMES = {".attention.attention.q_bias": ".attention.attention.query.bias",
                       ".attention.attention.v_bias": ".attention.attention.value.bias"}

PRESETS: dict[str, dict] = {
    # MCG-NJU/videomae-base with 8 frames and 2 labels; the first token after the final layernorm is classified.
    "base": {},
    "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "image_size": 64},
    # A classifier that learns Lift successes at 64 px on a CPU. Mean-pooled tokens: the tiny preset, which classifies
    # the first (corner) patch token, stayed at the base rate on that data.
    "small": {"hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 192,
              "image_size": 64, "patch_size": 8, "use_mean_pooling": True},
}


class RewardModelLoadError(UserError, RuntimeError):
    """A reward-model file does not match the classifier."""


def reward_config(preset: str = "base") -> VideoMAEConfig:
    if preset not in PRESETS:
        raise KeyError(f"unknown reward-model preset {preset!r}; known presets: {', '.join(PRESETS)}")
    settings = {"use_mean_pooling": False, **PRESETS[preset]}
    return VideoMAEConfig(num_frames=8, num_labels=2, qv_bias=True, **settings)


def build_reward_model(preset: str = "base") -> VideoMAEForVideoClassification:
    """A randomly initialized classifier (eval mode)."""
    return VideoMAEForVideoClassification(reward_config(preset)).eval()


def to_current_naming(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Released (old transformers) key names → current ones; ``module.`` prefixes from DDP are dropped."""
    converted = {}
    for name, tensor in state.items():
        name = name.removeprefix("module.")
        for old, new in RELEASED_BIAS_NAMES.items():
            if name.endswith(old):
                name = name[: -len(old)] + new
        converted[name] = tensor
    return converted


def to_released_naming(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    converted = {}
    for name, tensor in state.items():
        for old, new in RELEASED_BIAS_NAMES.items():
            if name.endswith(new):
                name = name[: -len(new)] + old
        converted[name] = tensor
    return converted


def load_reward_model(path: str | Path, preset: str = "base") -> VideoMAEForVideoClassification:
    """Load a ``.pth`` state dict (released or current naming) strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: reward-model file not found")
    state = load_torch_weights(path)
    if not isinstance(state, dict):
        raise RewardModelLoadError(f"{path}: expected a state dict, found {type(state).__name__}")
    state = to_current_naming(state)
    model = build_reward_model(preset)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [f"{k}: file {list(state[k].shape)} vs model {list(expected[k].shape)}"
                  for k in sorted(set(state) & set(expected)) if state[k].shape != expected[k].shape]
    if missing or unexpected or mismatched:
        details = "".join(f"\n  {title} ({len(items)}): {', '.join(items[:8])}" + (" ..." if len(items) > 8 else "")
                          for title, items in (("missing", missing), ("unexpected", unexpected),
                                               ("shape mismatches", mismatched)) if items)
        raise RewardModelLoadError(f"{path}: not a {preset} VideoMAE reward model{details}")
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_reward_model(model: VideoMAEForVideoClassification, path: str | Path) -> None:
    """``torch.save`` of the state dict in the released naming (``q_bias`` / ``v_bias``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(to_released_naming(state), path)
