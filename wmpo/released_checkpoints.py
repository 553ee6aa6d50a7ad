"""Recognize the released checkpoint components on disk and compare their tensor names and shapes with this
project's models, reading headers only (safetensors headers; ``.pt`` files memory-mapped, never read in full), so
7B checkpoints can be checked on a laptop.

Components: policy folders (``config.json`` with model_type ``openvla``), world-model weights (``.pt`` /
``.safetensors`` / sharded folders under ``world_models/``), the VAE folder (diffusers ``AutoencoderKL``) and reward
models (``reward_models/*.pth``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from opensora.checkpoint_io import mismatch_report
from opensora.checkpoint_io import read_shapes as read_world_model_shapes
from opensora.weight_files import load_torch_weights, open_safetensors

BASE_MODEL_DIR = "OpenSora-STDiT-v3"
"""The text-to-video STDiT-v3 that initializes world models: it has no action encoder (loaded non-strictly)."""


@dataclass
class Component:
    kind: str
    """policy, world_model, vae or reward_model."""
    path: Path
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched or self.error)

    def status(self) -> str:
        if self.error:
            return f"ERROR {self.error}"
        if self.ok:
            return "OK"
        parts = [f"{len(v)} {k}" for k, v in (("missing", self.missing), ("unexpected", self.unexpected),
                                                ("shape mismatch", self.mismatched)) if v]
        return ", ".join(parts)


def _meta_shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in module.state_dict().items()}


def _pt_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    state = load_torch_weights(path, mmap=True)
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    return {name: tuple(t.shape) for name, t in state.items()}


def check_policy(path: Path) -> Component:
    from wmpo.policy.checkpoint import read_tensor_shapes
    from wmpo.policy.configuration import OpenVLAConfig
    from wmpo.policy.modeling import OpenVLAForActionPrediction

    if not (path / "config.json").is_file():
        return Component("policy", path, error="config.json is missing (the folder holds policy weights only)")
    config = OpenVLAConfig.from_pretrained(path)
    with torch.device("meta"):
        model = OpenVLAForActionPrediction(config)
    component = Component("policy", path, *mismatch_report(_meta_shapes(model), read_tensor_shapes(path)))
    task = _task_of(path)
    if component.ok and task is not None and task.unnorm_key not in config.norm_stats:
        available = ", ".join(sorted(config.norm_stats)) or "none"
        component.error = (f"norm_stats lack {task.name}'s unnorm key {task.unnorm_key!r} (available: {available}); "
                           "the policy cannot un-normalize its actions for this task")
    return component


def _task_of(path: Path):
    """The registered task a released path belongs to (``SFT_models/<task>``, ``WMPO_models/<task>/...``), if any."""
    from wmpo.tasks import RELEASED_TASKS, get_task

    names = [part for part in path.resolve().parts if part in RELEASED_TASKS]
    return get_task(names[-1]) if names else None


def check_world_model(path: Path, preset: str = "XL/2") -> Component:
    from opensora.models.stdit3 import STDiT3
    from opensora.models.stdit3 import preset as stdit_preset

    with torch.device("meta"):
        model = STDiT3(stdit_preset(preset))
    if path.suffix in (".pt", ".pth"):
        found = {k.removeprefix("module."): v for k, v in _pt_shapes(path).items() if not k.startswith("pos_embed")}
    else:
        found = read_world_model_shapes(path)
    missing, unexpected, mismatched = mismatch_report(_meta_shapes(model), found)
    if BASE_MODEL_DIR in path.parts:
        missing = [name for name in missing if not name.startswith("action_embedder.")]
    return Component("world_model", path, missing, unexpected, mismatched)


def check_vae(path: Path) -> Component:
    from diffusers import AutoencoderKL

    config = json.loads((path / "config.json").read_text())
    with torch.device("meta"):
        model = AutoencoderKL.from_config(config)
    found = {}
    for file in sorted(path.glob("*.safetensors")):
        with open_safetensors(file) as handle:
            found.update({k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()})
    if not found:
        return Component("vae", path, error="no .safetensors weights in the folder")
    return Component("vae", path, *mismatch_report(_meta_shapes(model), found))


def check_reward_model(path: Path, preset: str = "base") -> Component:
    from wmpo.reward.model import build_reward_model, to_current_naming

    with torch.device("meta"):
        model = build_reward_model(preset)
    found = to_current_naming(_pt_shapes(path))
    return Component("reward_model", path, *mismatch_report(_meta_shapes(model), found))


def _is_policy(folder: Path) -> bool:
    config = folder / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == "openvla"
    except json.JSONDecodeError:
        return False


def _is_vae(folder: Path) -> bool:
    config = folder / "config.json"
    try:
        return config.is_file() and json.loads(config.read_text()).get("_class_name") == "AutoencoderKL"
    except json.JSONDecodeError:
        return False


def incomplete_policy(folder: Path) -> bool:
    """Weights of a policy without the config.json that says what they are."""
    return not (folder / "config.json").is_file() and any(folder.glob("model*.safetensors*"))


def discover(root: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every component found at or below ``root``."""
    if root.is_file():
        if root.suffix in (".pt", ".pth") and "reward_models" in root.parts:
            return [("reward_model", root)]
        return [("world_model", root)]
    found: list[tuple[str, Path]] = []
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    claimed: list[Path] = []
    for folder in folders:
        if any(parent in claimed for parent in folder.parents):
            continue
        if _is_policy(folder) or incomplete_policy(folder):
            found.append(("policy", folder))
            claimed.append(folder)
        elif _is_vae(folder):
            found.append(("vae", folder))
            claimed.append(folder)
        elif "world_models" in folder.parts or folder.name == "world_models":
            if any(folder.glob("*.safetensors.index.json")):
                found.append(("world_model", folder))
                claimed.append(folder)
                continue
            for file in sorted(folder.glob("*")):
                if file.suffix in (".pt", ".pth", ".safetensors") and file.is_file():
                    found.append(("world_model", file))
        elif folder.name == "reward_models":
            found += [("reward_model", file) for file in sorted(folder.glob("*.pth"))]
    return found


def check(kind: str, path: Path, world_model_preset: str = "XL/2", reward_preset: str = "base") -> Component:
    try:
        if kind == "policy":
            return check_policy(path)
        if kind == "world_model":
            return check_world_model(path, world_model_preset)
        if kind == "vae":
            return check_vae(path)
        return check_reward_model(path, reward_preset)
    except Exception as exc:  # a broken file is a finding to report, not a crash of the whole check
        return Component(kind, path, error=f"{type(exc).__name__}: {exc}")
