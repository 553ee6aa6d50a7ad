"""Supervised fine-tuning of the policy on episode shards (how the base policies WMPO starts from are made).

Each example is a frame, the instruction and the next 8 actions. Actions are normalized with the run's own dataset
statistics (BOUNDS_Q99 on the masked dimensions) and discretized into action tokens exactly inverse to decoding, so a
token decodes to the center of the bin its action fell into. The loss is the cross-entropy of the 56 action slots
of one parallel-decoding forward (the forward of ``predict`` and ``log_probs``). Train frames get OpenVLA-OFT's
random crop of 0.9 of the area; validation and inference use the center crop.

The run directory holds ``checkpoints/step_*/`` (``actor/`` in the released layout, ``optimizer.pt``, LoRA
adapters when used, ``state.json``), ``metrics.jsonl`` and, at the end, ``policy/``: the final policy in the released
layout with ``norm_stats`` under the run's unnorm key, read unchanged by ``load_policy``, the trainer and evaluation.
Under torchrun the same code runs data-parallel (DDP); the 7B trains that way with LoRA.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from opensora.datasets.shards import index_episodes
from opensora.training.checkpointing import incompleteness, newest_complete, write_atomically
from opensora.training.distributed import setup_distributed
from opensora.training.schedule import DECAYS, lr_factor
from opensora.training.settings import SettingError, check_settings
from wmpo.data.statistics import action_statistics
from wmpo.policy.action_tokenizer import ActionTokenizer, action_stats, action_tokens, unnormalize_actions
from wmpo.policy.checkpoint import policy_folder_problem
from wmpo.policy.processing import PromptTokenizer, center_crop_resize, normalize_two_copies, random_crop_resize
from wmpo.policy.sft_data import StepExamples

STEP_PREFIX = "step_"


@dataclass
class SFTConfig:
    shards: list[str] = field(default_factory=list)
    """Training episode shards (directories or globs), e.g. demonstrations from collect_rollouts.py."""
    val_shards: list[str] = field(default_factory=list)
    """Held-out episode shards; empty = the last val_episodes training episodes."""
    val_episodes: int = 2
    """Episodes held out for validation when val_shards is empty."""
    task: str = "square"
    """Task whose prompt and unnorm key the policy is trained with."""
    unnorm_key: str | None = None
    """Key of the statistics in norm_stats; None = the task's."""
    init_from: str | None = None
    """Policy directory to fine-tune (released layout); None = a randomly initialized ``preset``."""
    preset: str = "small"
    """Architecture when init_from is None: small (64 px input) or tiny."""
    output: str = "outputs/sft/run"
    """Run directory."""
    steps: int = 2000
    """Optimizer steps (the counter continues across resumes)."""
    batch_size: int = 32
    """Examples per rank and step."""
    lr: float = 3e-4
    """AdamW learning rate after warmup."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    warmup_steps: int = 50
    """Linear warmup steps."""
    decay: str = "constant"
    """Learning rate after warmup: constant, or cosine (down to 0 at ``steps``)."""
    grad_clip: float = 1.0
    """Global gradient-norm clip."""
    crop_area: float = 0.9
    """Area fraction of the train-time random crop and of the inference center crop."""
    augment: bool = True
    """Random crops for training frames (False: the center crop, as at inference)."""
    lora_rank: int = 0
    """> 0: train LoRA adapters of this rank on every linear layer instead of all weights (merged on export)."""
    log_every: int = 20
    """Steps between metric lines."""
    val_every: int = 200
    """Steps between validations (and always at the end)."""
    val_examples: int = 512
    """Held-out examples per validation (evenly spaced over the held-out episodes)."""
    ckpt_every: int = 500
    """Steps between checkpoints (and always at the end)."""
    keep_last: int = 2
    """Checkpoints kept on disk."""
    seed: int = 0
    """Seed of the initialization, the example order and the augmentation."""
    device: str = "auto"
    """cpu, cuda or auto."""
    bf16: bool = True
    """On CUDA: bf16 autocast (fp32 master weights)."""
    resume: str = "auto"
    """auto (newest checkpoint in output), none, or a checkpoint directory."""


def validate_config(cfg: SFTConfig) -> None:
    """Fail before any work, naming the setting."""
    check_settings((ok, key, getattr(cfg, key), allowed) for ok, key, allowed in [
        (cfg.steps >= 1, "steps", "≥ 1"), (cfg.batch_size >= 1, "batch_size", "≥ 1"), (cfg.lr >= 0, "lr", "≥ 0"),
        (0.0 < cfg.crop_area <= 1.0, "crop_area", "in (0, 1]"), (cfg.keep_last >= 1, "keep_last", "≥ 1"),
        (cfg.log_every >= 1, "log_every", "≥ 1"), (cfg.ckpt_every >= 1, "ckpt_every", "≥ 1"),
        (cfg.val_every >= 0, "val_every", "≥ 0"), (cfg.lora_rank >= 0, "lora_rank", "≥ 0"),
        (bool(cfg.shards), "shards", "non-empty"), (cfg.decay in DECAYS, "decay", " or ".join(DECAYS)),
    ])
    if cfg.init_from is not None and (problem := policy_folder_problem(cfg.init_from)):
        raise SettingError(f"init_from={cfg.init_from}: {problem}")
    if cfg.resume not in ("auto", "none") and (problem := incompleteness(cfg.resume)):
        raise SettingError(f"resume={cfg.resume}: not a complete SFT checkpoint ({problem})")


def action_slots(actions: np.ndarray, stats: dict, tokenizer: ActionTokenizer) -> torch.Tensor:
    """Environment actions (B, 8, 7) → target indices (B, 56) among the action logits."""
    return tokenizer.token_to_slot(action_tokens(actions, stats, tokenizer))


def decode_slots(slots: torch.Tensor, stats: dict, tokenizer: ActionTokenizer) -> np.ndarray:
    """Indices (B, 56) → environment actions (B, 8, 7), the decoding path of ``predict``."""
    normalized = tokenizer.tokens_to_normalized(tokenizer.slot_to_token(slots.cpu()), torch.float64)
    return unnormalize_actions(normalized.view(len(slots), 8, -1).numpy(), stats)


@dataclass
class Parts:
    """What the training loop works with."""

    model: nn.Module
    """The module that is trained (wrapped by DDP/FSDP2, with LoRA adapters when used)."""
    base: nn.Module
    """The OpenVLAForActionPrediction inside (its config carries the statistics)."""
    tokenizer: object
    prompts: PromptTokenizer
    actions: ActionTokenizer
    stats: dict


def _source(cfg: SFTConfig, rank: int):
    """(config, full state on rank 0, tokenizer) of the starting policy."""
    from wmpo.policy.checkpoint import build_model, load_model
    from wmpo.policy.configuration import OpenVLAConfig, preset
    from wmpo.policy.policy import load_tokenizer
    from wmpo.policy.tiny import TINY_VOCAB_SIZE, build_tiny_tokenizer

    if cfg.init_from is not None:
        config = OpenVLAConfig.from_pretrained(cfg.init_from)
        state = load_model(cfg.init_from).state_dict() if rank == 0 else {}
        return config, state, load_tokenizer(cfg.init_from)
    config = preset(cfg.preset, vocab_size=TINY_VOCAB_SIZE)
    torch.manual_seed(cfg.seed)
    state = build_model(config).state_dict() if rank == 0 else {}
    return config, state, build_tiny_tokenizer()


def build_parts(cfg: SFTConfig, stats_entry: dict, unnorm_key: str, rank: int, world: int,
                device: torch.device) -> Parts:
    """The starting policy with the run's statistics, placed and wrapped for this process."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    from wmpo.policy.modeling import OpenVLAForActionPrediction

    config, state, tokenizer = _source(cfg, rank)
    config.norm_stats = {**config.norm_stats, unnorm_key: stats_entry}
    base = OpenVLAForActionPrediction(config)
    if world > 1:
        set_model_state_dict(base, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    else:
        base.load_state_dict(state)
    base.to(device)
    model = base
    if cfg.lora_rank:
        from wmpo.policy.lora import add_lora

        model = add_lora(base, rank=cfg.lora_rank)
    if world > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    model.train()
    prompts = PromptTokenizer(tokenizer, config.pad_token_id)
    actions = ActionTokenizer(config.vocab_size, config.n_action_bins)
    return Parts(model, base, tokenizer, prompts, actions, action_stats(config.norm_stats, unnorm_key))


def _unwrapped(model: nn.Module) -> nn.Module:
    """The module inside DDP: a forward on rank 0 alone must not enter DDP's collective buffer sync."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def merged_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The plain policy's state dict of a LoRA model, adapters folded in, without changing the model."""
    from peft.tuners.lora import LoraLayer

    base = _unwrapped(model).base_model.model
    merged = {}
    with torch.no_grad():
        for name, module in base.named_modules():
            if isinstance(module, LoraLayer) and "default" in module.lora_A:
                merged[f"{name}.weight"] = module.base_layer.weight + module.get_delta_weight("default")
                if module.base_layer.bias is not None:
                    merged[f"{name}.bias"] = module.base_layer.bias
        for name, tensor in base.state_dict().items():
            if "lora_" in name:
                continue
            plain = name.replace(".base_layer.", ".")
            merged.setdefault(plain, tensor)
    return {name: tensor.detach().cpu() for name, tensor in merged.items()}


def lora_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().cpu() for name, t in _unwrapped(model).state_dict().items() if "lora_" in name}


def full_states(parts: Parts, optimizer: torch.optim.Optimizer, lora: bool) -> tuple[dict, dict, dict]:
    """(plain model state, optimizer state, LoRA adapter state), gathered in full (valid on rank 0)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    optim = get_optimizer_state_dict(parts.model, optimizer, options=options)
    if lora:
        return merged_state(parts.model), optim, lora_state(parts.model)
    return get_model_state_dict(parts.model, options=options), optim, {}


def export_policy(parts: Parts, model_state: dict, path: Path) -> None:
    """The released layout (config.json with norm_stats, dataset_statistics.json, safetensors, tokenizer)."""
    from wmpo.policy.checkpoint import save_model

    save_model(parts.base, path, tokenizer=parts.tokenizer, state_dict=model_state)


def load_checkpoint(parts: Parts, optimizer: torch.optim.Optimizer, path: Path, lora: bool, rank: int) -> int:
    from safetensors.torch import load_file
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

    from wmpo.policy.checkpoint import load_model

    options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=dist.is_initialized())
    if lora:
        adapters = load_file(path / "lora.safetensors")
        inner = _unwrapped(parts.model)
        missing = set(adapters) - set(inner.state_dict())
        if missing:
            raise SettingError(f"{path}: LoRA adapters do not fit the model ({sorted(missing)[:3]} ...)")
        inner.load_state_dict(adapters, strict=False)
    else:
        state = load_model(path / "actor").state_dict() if rank == 0 or not dist.is_initialized() else {}
        set_model_state_dict(parts.model, state, options=options)
    optim = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False) if rank == 0 else {}
    set_optimizer_state_dict(parts.model, optimizer, optim, options=options)
    return int(json.loads((path / "state.json").read_text())["step"])


def model_inputs(parts: Parts, frames: np.ndarray, instruction: str, size: int, device: torch.device,
                 crop_area: float, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
    """Policy inputs for uint8 frames: random crop with a generator (training), the center crop without."""
    images = torch.from_numpy(np.ascontiguousarray(frames))
    if generator is not None:
        cropped = random_crop_resize(images, size, crop_area, generator)
    else:
        cropped = center_crop_resize(images, size, crop_area)
    batch = parts.prompts([instruction] * len(frames), device=device)
    batch["pixel_values"] = normalize_two_copies(cropped.to(device))
    return batch


def forward_logits(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])


@torch.no_grad()
def validate(parts: Parts, examples: StepExamples, rows: np.ndarray, instruction: str, size: int,
             device: torch.device, crop_area: float, autocast, batch_size: int = 64) -> dict[str, float]:
    """Held-out token loss and accuracy (argmax) and L1 of the decoded actions in environment units."""
    parts.model.eval()
    losses, correct, l1 = [], [], []
    for start in range(0, len(rows), batch_size):
        frames, actions = examples.batch(rows[start : start + batch_size])
        targets = action_slots(actions, parts.stats, parts.actions).to(device)
        with autocast:
            inputs = model_inputs(parts, frames, instruction, size, device, crop_area, None)
            logits = forward_logits(_unwrapped(parts.model), inputs)
        losses.append(nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none"))
        predicted = logits.argmax(dim=-1)
        correct.append((predicted == targets).float().flatten())
        decoded = decode_slots(predicted, parts.stats, parts.actions)
        l1.append(np.abs(decoded - actions).mean(axis=(1, 2)))
    parts.model.train()
    return {"loss": float(torch.cat(losses).mean()), "token_accuracy": float(torch.cat(correct).mean()),
            "action_l1": float(np.concatenate(l1).mean())}


def _step_generator(seed: int, rank: int, step: int) -> tuple[np.random.Generator, torch.Generator]:
    """Example choice and crops depend only on (seed, rank, step): a resumed run sees what the original would have."""
    rng = np.random.default_rng([seed, rank, step])
    return rng, torch.Generator().manual_seed(int(rng.integers(2**62)))


def _split_episodes(cfg: SFTConfig):
    episodes = index_episodes(list(cfg.shards))
    if cfg.val_shards:
        return episodes, index_episodes(list(cfg.val_shards))
    if len(episodes) <= cfg.val_episodes:
        raise SettingError(f"{len(episodes)} episodes in {cfg.shards}; need more than val_episodes={cfg.val_episodes}")
    split = len(episodes) - cfg.val_episodes
    return episodes[:split], episodes[split:]


def train(cfg: SFTConfig) -> dict[str, float]:
    """Run (or resume, or report as complete) one SFT run; returns the last metrics."""
    from wmpo.logging import MetricLogger
    from wmpo.tasks import get_task

    validate_config(cfg)
    task = get_task(cfg.task)
    unnorm_key = cfg.unnorm_key or task.unnorm_key
    output = Path(cfg.output)
    final = output / "policy"
    rank, world, device = setup_distributed(cfg.device)
    train_eps, val_eps = _split_episodes(cfg)
    examples, held_out = StepExamples(train_eps), StepExamples(val_eps) if val_eps else None
    stats_entry = action_statistics(examples.actions)
    parts = build_parts(cfg, stats_entry, unnorm_key, rank, world, device)
    size = int(parts.base.config.image_sizes[0])
    params = [p for p in parts.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg.warmup_steps, cfg.steps, cfg.decay))
    use_bf16 = device.type == "cuda" and cfg.bf16
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()

    resume = newest_complete(output / "checkpoints", STEP_PREFIX) if cfg.resume == "auto" else (
        None if cfg.resume == "none" else Path(cfg.resume))
    start = 0
    if resume is not None:
        start = load_checkpoint(parts, optimizer, resume, bool(cfg.lora_rank), rank)
        for _ in range(start):
            schedule.step()
        if rank == 0:
            print(f"resumed from {resume} at step {start}", flush=True)
    if start >= cfg.steps and (final / "config.json").is_file():
        if rank == 0:
            print(f"{output}: SFT run complete at step {start} (policy in {final})", flush=True)
        return {}
    if rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    logger = MetricLogger(output, resume_at=start) if rank == 0 else None
    val_rows = held_out.evenly_spaced(cfg.val_examples) if held_out is not None else None
    metrics: dict[str, float] = {}

    def checkpoint(step: int) -> None:
        model_state, optim_state, adapters = full_states(parts, optimizer, bool(cfg.lora_rank))
        if rank != 0:
            return

        def write(folder: Path) -> None:
            export_policy(parts, model_state, folder / "actor")
            torch.save(optim_state, folder / "optimizer.pt")
            if adapters:
                from safetensors.torch import save_file

                save_file(adapters, str(folder / "lora.safetensors"))
            (folder / "state.json").write_text(json.dumps({"step": step}) + "\n")

        write_atomically(output / "checkpoints" / f"{STEP_PREFIX}{step:07d}", STEP_PREFIX, cfg.keep_last, write)
        if step == cfg.steps:
            export_policy(parts, model_state, final)

    if val_rows is not None and start == 0 and rank == 0:
        # The starting point of the held-out metrics, so a run shows what training changed.
        result = validate(parts, held_out, val_rows, task.prompt, size, device, cfg.crop_area, autocast)
        if logger is not None:
            logger.write(0, {f"val/{k}": v for k, v in result.items()})
    interval = 0.5 if sys.stderr.isatty() else 30.0
    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="sft", disable=rank != 0,
               mininterval=interval)
    window, window_start, window_loss, window_acc = 0, time.perf_counter(), 0.0, 0.0
    for step in bar:
        rng, generator = _step_generator(cfg.seed, rank, step)
        frames, actions = examples.batch(rng.integers(0, len(examples), size=cfg.batch_size))
        targets = action_slots(actions, parts.stats, parts.actions).to(device)
        inputs = model_inputs(parts, frames, task.prompt, size, device, cfg.crop_area,
                              generator if cfg.augment else None)
        with autocast:
            logits = forward_logits(parts.model, inputs)
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite SFT loss at step {step}; the last checkpoint is kept")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
        if not torch.isfinite(grad_norm):
            raise FloatingPointError(f"non-finite gradient norm at step {step}; the last checkpoint is kept")
        optimizer.step()
        schedule.step()
        done = step + 1
        window += 1
        window_loss += float(loss.detach())
        window_acc += float((logits.argmax(-1) == targets).float().mean())
        if done % cfg.log_every == 0 or done == cfg.steps:
            elapsed = time.perf_counter() - window_start
            metrics = {"train/loss": window_loss / window, "train/token_accuracy": window_acc / window,
                       "train/grad_norm": float(grad_norm), "train/lr": schedule.get_last_lr()[0],
                       "perf/examples_per_s": window * cfg.batch_size * world / max(elapsed, 1e-9)}
            window, window_start, window_loss, window_acc = 0, time.perf_counter(), 0.0, 0.0
            if val_rows is not None and ((cfg.val_every and done % cfg.val_every == 0) or done == cfg.steps):
                if rank == 0:
                    result = validate(parts, held_out, val_rows, task.prompt, size, device, cfg.crop_area, autocast)
                    metrics.update({f"val/{k}": v for k, v in result.items()})
            if logger is not None:
                logger.write(done, metrics)
                bar.set_postfix(loss=f"{metrics['train/loss']:.3f}", acc=f"{metrics['train/token_accuracy']:.2f}")
        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            checkpoint(done)
    if logger is not None:
        logger.close()
        print(f"SFT done: policy in {final}" + "".join(f", {k} {v:.4f}" for k, v in metrics.items()
                                                     if k.startswith("val/")), flush=True)
    if world > 1:
        dist.destroy_process_group()
    return metrics
