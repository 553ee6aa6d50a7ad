"""OpenVLA-OFT configuration, read from and written to a released checkpoint's ``config.json``.

The released config is the Prismatic/OpenVLA one (model_type ``openvla``). Only the fields that shape the model or
the action tokenizer are interpreted; the rest (``auto_map``, ``transformers_version``, ...) is kept verbatim in
``extra`` so a saved checkpoint keeps what it was loaded with. ``vision_overrides`` is this project's addition: keyword
overrides for the timm constructors, used by the ``tiny`` preset and absent from released checkpoints.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import LlamaConfig

from opensora.errors import UserError

DINOSIGLIP_TIMM_IDS = ("vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224")
"""timm ids behind vision_backbone_id ``dinosiglip-vit-so-224px``: DINOv2 first, SigLIP second."""

_INTERPRETED = (
    "vision_backbone_id",
    "llm_backbone_id",
    "arch_specifier",
    "use_fused_vision_backbone",
    "image_sizes",
    "timm_model_ids",
    "text_config",
    "pad_token_id",
    "pad_to_multiple_of",
    "n_action_bins",
    "norm_stats",
    "vision_overrides",
)


class PolicyConfigError(UserError, ValueError):
    """A policy ``config.json`` (or preset) describes a model this implementation does not build."""


@dataclass
class OpenVLAConfig:
    """What an OpenVLA-OFT checkpoint's ``config.json`` says about the model."""

    vision_backbone_id: str = "dinosiglip-vit-so-224px"
    """Prismatic vision backbone id; only the fused DINOv2 + SigLIP backbone is supported."""
    llm_backbone_id: str = "llama2-7b-pure"
    """Prismatic LLM backbone id (Llama-2 family)."""
    arch_specifier: str = "no-align+fused-gelu-mlp"
    """Projector kind; ``fused-gelu-mlp`` is the 3-layer GELU MLP of the fused backbone."""
    use_fused_vision_backbone: bool = True
    """Whether two vision towers are fused (required)."""
    image_sizes: list[int] = field(default_factory=lambda: [224, 224])
    """Input resolution of each vision tower."""
    timm_model_ids: list[str] = field(default_factory=lambda: list(DINOSIGLIP_TIMM_IDS))
    """timm architectures of the two towers (DINOv2, SigLIP)."""
    text_config: dict[str, Any] = field(
        default_factory=lambda: {"model_type": "llama", "pad_token_id": 32000, "vocab_size": 32064}
    )
    """Llama configuration overrides; unspecified fields take transformers' LlamaConfig defaults (the 7B shape)."""
    pad_token_id: int = 32000
    """Padding token id (one past the base vocabulary)."""
    pad_to_multiple_of: int = 64
    """The embedding table is the base vocabulary padded up to a multiple of this."""
    n_action_bins: int = 256
    """Number of discretization bins per action dimension (= number of action token ids)."""
    norm_stats: dict[str, Any] = field(default_factory=dict)
    """Per-dataset statistics (OpenVLA format), keyed by unnorm_key."""
    vision_overrides: list[dict[str, Any]] | None = None
    """Keyword overrides for the two timm constructors (small towers for tests); None for released models."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Other config.json fields, written back unchanged."""

    def __post_init__(self) -> None:
        if self.vision_backbone_id != "dinosiglip-vit-so-224px" or not self.use_fused_vision_backbone:
            raise PolicyConfigError(
                f"vision_backbone_id={self.vision_backbone_id!r} (fused={self.use_fused_vision_backbone}) is not "
                "supported; WMPO policies use the fused 'dinosiglip-vit-so-224px' backbone"
            )
        if not self.arch_specifier.endswith("fused-gelu-mlp"):
            raise PolicyConfigError(f"arch_specifier={self.arch_specifier!r}: only '*fused-gelu-mlp' is supported")
        if len(self.timm_model_ids) != 2:
            raise PolicyConfigError(f"timm_model_ids must name two towers, got {self.timm_model_ids}")
        act_layers = self.extra.get("timm_override_act_layers")
        if act_layers is not None and any(layer is not None for layer in act_layers):
            raise PolicyConfigError(f"timm_override_act_layers={act_layers}: activation overrides are not supported")
        if self.vision_overrides is not None and len(self.vision_overrides) != 2:
            raise PolicyConfigError("vision_overrides must hold one dict per tower")

    @property
    def text_vocab_size(self) -> int:
        """Rows of the (padded) embedding table and of the LM head."""
        return int(self.text_config.get("vocab_size", 32000))

    @property
    def vocab_size(self) -> int:
        """Base vocabulary size: the embedding table without the padding rows (32000 for Llama-2)."""
        return self.text_vocab_size - self.pad_to_multiple_of

    @property
    def action_token_begin(self) -> int:
        """First action token id: the action tokens are the last ``n_action_bins`` ids of the base vocabulary."""
        return self.vocab_size - self.n_action_bins

    def llama_config(self) -> LlamaConfig:
        """The language model's configuration (transformers defaults for unspecified fields, as OpenVLA does)."""
        kwargs = {k: v for k, v in self.text_config.items() if k not in ("model_type", "torch_dtype", "dtype")}
        config = LlamaConfig(**kwargs)
        config._attn_implementation = "sdpa"
        return config

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> OpenVLAConfig:
        """Build from a parsed ``config.json``."""
        model_type = data.get("model_type", "openvla")
        if model_type != "openvla":
            raise PolicyConfigError(f"{source}: model_type is {model_type!r}, expected 'openvla'")
        known = {k: copy.deepcopy(data[k]) for k in _INTERPRETED if k in data}
        extra = {k: copy.deepcopy(v) for k, v in data.items() if k not in _INTERPRETED}
        return cls(**known, extra=extra)

    @classmethod
    def from_pretrained(cls, path: str | Path) -> OpenVLAConfig:
        """Read ``config.json`` from a checkpoint directory; ``dataset_statistics.json`` there overrides norm_stats."""
        path = Path(path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise FileNotFoundError(f"{config_file}: no config.json in the policy checkpoint directory")
        try:
            data = json.loads(config_file.read_text())
        except json.JSONDecodeError as exc:
            raise PolicyConfigError(f"{config_file}: not valid JSON ({exc})") from None
        config = cls.from_dict(data, source=str(config_file))
        stats_file = path / "dataset_statistics.json"
        if stats_file.is_file():
            config.norm_stats = json.loads(stats_file.read_text())
        return config

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` content."""
        data = copy.deepcopy(self.extra)
        data.setdefault("model_type", "openvla")
        data.setdefault("architectures", ["OpenVLAForActionPrediction"])
        for key in _INTERPRETED:
            value = getattr(self, key)
            if key == "vision_overrides" and value is None:
                continue
            data[key] = copy.deepcopy(value)
        return data

    def save(self, path: str | Path) -> None:
        """Write ``config.json`` into ``path``."""
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / "config.json").write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def _small(vocab_size: int | None) -> OpenVLAConfig:
    """A policy that learns from 64×64 frames on a CPU: patch-8 towers give an 8×8 grid of visual tokens."""
    base = 512 if vocab_size is None else vocab_size
    return OpenVLAConfig(
        llm_backbone_id="llama2-small",
        image_sizes=[64, 64],
        text_config={
            "model_type": "llama",
            "pad_token_id": base,
            "vocab_size": base + 64,
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 512,
        },
        pad_token_id=base,
        vision_overrides=[
            {"embed_dim": 96, "depth": 4, "num_heads": 4, "patch_size": 8},
            {"embed_dim": 96, "depth": 4, "num_heads": 4, "mlp_ratio": 2.0, "patch_size": 8},
        ],
    )


PRESETS = ("7b", "small", "tiny")


def preset(name: str, vocab_size: int | None = None) -> OpenVLAConfig:
    """``7b``: the released architecture. ``small``: 64 px input, trainable on a CPU. ``tiny``: same code, small
    towers and Llama (``vocab_size`` = base vocab) for tests."""
    if name == "7b":
        return OpenVLAConfig()
    if name == "small":
        return _small(vocab_size)
    if name == "tiny":
        base = 512 if vocab_size is None else vocab_size
        return OpenVLAConfig(
            llm_backbone_id="llama2-tiny",
            text_config={
                "model_type": "llama",
                "pad_token_id": base,
                "vocab_size": base + 64,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_hidden_layers": 2,
                "num_attention_heads": 4,
                "num_key_value_heads": 4,
                "max_position_embeddings": 512,
            },
            pad_token_id=base,
            vision_overrides=[
                {"embed_dim": 48, "depth": 3, "num_heads": 3},
                {"embed_dim": 56, "depth": 3, "num_heads": 4, "mlp_ratio": 2.0},
            ],
        )
    raise PolicyConfigError(f"unknown policy preset {name!r}; known presets: {', '.join(PRESETS)}")
