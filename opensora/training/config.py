"""World-model training configuration: a YAML file (``configs/world_model/*.yaml``) plus ``key=value`` overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from opensora.training.checkpointing import incompleteness
from opensora.training.schedule import DECAYS
from opensora.training.settings import SettingError, check_settings


@dataclass
class DataConfig:
    shards: list[str] = field(default_factory=list)
    """Episode shard directories or globs (``*.tar`` below a directory are all used)."""
    stats: str = ""
    """dataset_statistics.json with the action q01/q99 used for normalization."""
    val_episodes: int = 2
    """The last N indexed episodes are held out for validation."""
    batch_size: int = 4
    """Windows per rank per step."""
    num_workers: int = 4
    """DataLoader worker processes per rank."""
    context_frames: int = 4
    """Context frames per window."""
    target_frames: int = 8
    """Frames (and actions) to predict per window."""


@dataclass
class ModelConfig:
    preset: str = "XL/2"
    """STDiT3 preset (XL/2, tiny, tiny-pixel, small-patch)."""
    init_from: str | None = None
    """Weights to start from (ema.pt, .safetensors or sharded directory); None = random initialization."""
    vae_preset: str = "sdxl"
    """sdxl, tiny (random when vae_path is unset), pixel or linear-patch (the fitted autoencoder in vae_path)."""
    vae_path: str | None = None
    """diffusers VAE folder (checkpoint_files/world_models/vae), or the linear-patch autoencoder's folder."""
    vae_micro_batch: int = 64
    """Frames per VAE call."""


@dataclass
class OptimConfig:
    lr: float = 1e-4
    """AdamW learning rate after warmup."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    eps: float = 1e-15
    """AdamW epsilon."""
    warmup_steps: int = 1000
    """Linear warmup: lr·(step+1)/(warmup+1) for the first warmup steps."""
    decay: str = "constant"
    """Learning rate after warmup: constant, or cosine (down to 0 at max_steps)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    ema_decay: float = 0.99
    """Decay of the fp32 exponential moving average of the weights."""
    use_timestep_transform: bool = True
    """Resolution shift of the timesteps (identity at 256×256; strongly skewed to low noise for small frames)."""


@dataclass
class TrainConfig:
    output: str = "outputs/world_model/run"
    """Run directory: checkpoints/, metrics.jsonl, validation/ and the resolved config."""
    max_steps: int = 10000
    """Optimizer steps to train for (the step counter continues across resumes)."""
    seed: int = 42
    """Seed of the model initialization, the data order and the per-step noise."""
    parallel: str = "ddp"
    """ddp or fsdp (PyTorch FSDP2, one unit per transformer block)."""
    precision: str = "bf16"
    """bf16 (autocast on GPU; fp32 master weights) or fp32. CPU runs always use fp32."""
    resume: str = "auto"
    """auto (latest checkpoint in output, if any), none, or a checkpoint directory."""
    log_every: int = 10
    """Steps between metric lines."""
    ckpt_every: int = 1000
    """Steps between checkpoints (one is always written at the end)."""
    keep_last: int = 3
    """Checkpoints kept on disk (older ones are deleted)."""
    val_every: int = 1000
    """Steps between validations (0 = only at the end)."""
    val_windows: int = 8
    """Held-out windows predicted per validation."""
    val_sampling_steps: int = 30
    """Euler steps of the validation sampler."""
    tensorboard: bool = True
    """Also write TensorBoard event files."""
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


def load_config(path: str | Path | None, overrides: list[str]) -> TrainConfig:
    """Defaults ← YAML file ← ``key=value`` overrides (dotted keys, e.g. ``data.batch_size=2``)."""
    merged = OmegaConf.structured(TrainConfig)
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: training config not found")
        merged = OmegaConf.merge(merged, OmegaConf.load(path))
    merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(overrides))
    config = OmegaConf.to_object(merged)
    check_train_settings(config)
    return config


def check_train_settings(c: TrainConfig) -> None:
    """Raise SettingError for the first out-of-range value, before any data or model is loaded."""
    check_settings([
        (c.parallel in ("ddp", "fsdp"), "parallel", c.parallel, "ddp or fsdp"),
        (c.precision in ("bf16", "fp32"), "precision", c.precision, "bf16 or fp32"),
        (c.max_steps >= 1, "max_steps", c.max_steps, "≥ 1"),
        (c.log_every >= 1, "log_every", c.log_every, "≥ 1"),
        (c.ckpt_every >= 1, "ckpt_every", c.ckpt_every, "≥ 1"),
        (c.keep_last >= 1, "keep_last", c.keep_last, "≥ 1 (fewer would delete every checkpoint)"),
        (c.val_every >= 0, "val_every", c.val_every, "≥ 0 (0 = only at the end)"),
        (c.val_windows >= 0, "val_windows", c.val_windows, "≥ 0"),
        (c.val_sampling_steps >= 1, "val_sampling_steps", c.val_sampling_steps, "≥ 1"),
        (c.data.batch_size >= 1, "data.batch_size", c.data.batch_size, "≥ 1"),
        (c.data.num_workers >= 0, "data.num_workers", c.data.num_workers, "≥ 0"),
        (c.data.val_episodes >= 0, "data.val_episodes", c.data.val_episodes, "≥ 0"),
        (c.data.context_frames >= 1, "data.context_frames", c.data.context_frames, "≥ 1"),
        (c.data.target_frames >= 1, "data.target_frames", c.data.target_frames, "≥ 1"),
        (c.optim.lr >= 0, "optim.lr", c.optim.lr, "≥ 0"),
        (c.optim.weight_decay >= 0, "optim.weight_decay", c.optim.weight_decay, "≥ 0"),
        (c.optim.warmup_steps >= 0, "optim.warmup_steps", c.optim.warmup_steps, "≥ 0"),
        (c.optim.decay in DECAYS, "optim.decay", c.optim.decay, " or ".join(DECAYS)),
        (c.optim.grad_clip > 0, "optim.grad_clip", c.optim.grad_clip, "> 0"),
        (0.0 <= c.optim.ema_decay <= 1.0, "optim.ema_decay", c.optim.ema_decay, "in [0, 1]"),
    ])
    if c.resume not in ("auto", "none"):
        problem = incompleteness(c.resume)
        if problem:
            raise SettingError(f"resume={c.resume}: not a complete training checkpoint ({problem}); use auto, none "
                               "or a checkpoints/step_NNNNNNN folder")


def to_yaml(config: TrainConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(config))
