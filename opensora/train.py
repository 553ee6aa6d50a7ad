"""Train the action-conditioned world model on episode shards.

    torchrun --nproc_per_node 8 -m opensora.train --config configs/world_model/train_mimicgen.yaml \\
        data.shards=[data_files/example_rollouts/square_128_demos] output=outputs/world_model/square_128
    python -m opensora.train --config configs/world_model/tiny.yaml data.shards=[...] data.stats=...  # one CPU process
    python -m opensora.train --config ... --dry-run                  # print the resolved configuration and exit

Each step: VAE-encode a batch of 12-frame windows (posterior samples), rectified-flow loss on the 8 target frames,
AdamW with linear warmup and gradient clipping, fp32 EMA update. Checkpoints hold everything needed to continue
exactly where a run stopped (``resume=auto`` is the default); the data order and the per-step noise are functions
of (seed, step, rank), so a resumed run reproduces the uninterrupted one.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.utils.data import DataLoader
from tqdm import tqdm

from opensora.checkpoint_io import load_weights
from opensora.datasets.shards import index_episodes
from opensora.datasets.windows import ResumableBatchSampler, WindowDataset, load_action_bounds
from opensora.errors import reports_errors
from opensora.models.stdit3 import STDiT3, preset
from opensora.models.vae import build_vae
from opensora.schedulers.rflow import RFlow, RFlowConfig
from opensora.training.checkpointing import (
    checkpoint_dir,
    drop_rows_after,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from opensora.training.config import TrainConfig, load_config, to_yaml
from opensora.training.distributed import setup_distributed
from opensora.training.ema import EMA
from opensora.training.schedule import lr_factor
from opensora.training.interrupts import Interrupted, StopOnSignal
from opensora.training.validation import validate, validation_indices


def step_generator(seed: int, rank: int, step: int, device: torch.device) -> torch.Generator:
    """The noise of a step depends only on (seed, rank, step): a resumed run draws what the original would have."""
    value = int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])
    return torch.Generator(device=device).manual_seed(value)


def stop_requested(stop: StopOnSignal, world: int, device: torch.device) -> bool:
    """Whether any rank received SIGTERM/SIGINT (all ranks stop at the same step, so collectives stay matched)."""
    if world == 1:
        return stop.requested is not None
    flag = torch.tensor([float(stop.requested is not None)], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def build_data(cfg: TrainConfig) -> tuple[WindowDataset, WindowDataset]:
    episodes = index_episodes(list(cfg.data.shards))
    if len(episodes) <= cfg.data.val_episodes:
        raise ValueError(f"{len(episodes)} episodes found; need more than val_episodes={cfg.data.val_episodes}")
    q01, q99 = load_action_bounds(cfg.data.stats)
    split = len(episodes) - cfg.data.val_episodes
    make = lambda eps: WindowDataset(eps, q01, q99, cfg.data.context_frames, cfg.data.target_frames)  # noqa: E731
    return make(episodes[:split]), make(episodes[split:])


def wrap(model: STDiT3, cfg: TrainConfig, device: torch.device, world: int) -> torch.nn.Module:
    if world == 1:
        return model
    if cfg.parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        bf16 = device.type == "cuda" and cfg.precision == "bf16"
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if bf16 else None
        kwargs = {"mp_policy": policy} if policy is not None else {}
        for block in model.blocks():
            fully_shard(block, **kwargs)
        return fully_shard(model, **kwargs)
    device_ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


class MetricLog:
    """metrics.jsonl (+ TensorBoard) on rank 0."""

    def __init__(self, output: Path, tensorboard: bool, resumed_at: int) -> None:
        drop_rows_after(output / "metrics.jsonl", resumed_at, key="step")
        self.file = open(output / "metrics.jsonl", "a")
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output / "tensorboard"))

    def write(self, step: int, metrics: dict[str, float]) -> None:
        self.file.write(json.dumps({"step": step, **metrics}) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.file.close()
        if self.writer is not None:
            self.writer.close()


def train(cfg: TrainConfig) -> dict[str, float]:
    rank, world, device = setup_distributed()
    output = Path(cfg.output)
    if rank == 0:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.yaml").write_text(to_yaml(cfg))
    use_bf16 = device.type == "cuda" and cfg.precision == "bf16"
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else nullcontext()

    train_set, val_set = build_data(cfg)
    torch.manual_seed(cfg.seed)
    model = STDiT3(preset(cfg.model.preset))
    if cfg.model.init_from:
        load_weights(model, cfg.model.init_from)
    model.to(device)
    vae = build_vae(cfg.model.vae_preset, cfg.model.vae_path, cfg.model.vae_micro_batch)
    vae = vae.to(device, torch.bfloat16 if use_bf16 else torch.float32).eval().requires_grad_(False)
    scheduler = RFlow(RFlowConfig(use_timestep_transform=cfg.optim.use_timestep_transform))
    wrapped = wrap(model, cfg, device, world)
    # After wrapping: under FSDP2 the model's own parameters are now the sharded ones (DDP leaves them as they are).
    ema = EMA(model, cfg.optim.ema_decay)
    params = [p for p in wrapped.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay, eps=cfg.optim.eps)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg.optim.warmup_steps, cfg.max_steps, cfg.optim.decay))

    start = 0
    resume_from = latest_checkpoint(output) if cfg.resume == "auto" else None if cfg.resume == "none" else cfg.resume
    full = StateDictOptions(full_state_dict=True, cpu_offload=True)
    if resume_from is not None:
        state = load_checkpoint(resume_from)
        set_model_state_dict(wrapped, state["model"], options=StateDictOptions(full_state_dict=True))
        set_optimizer_state_dict(wrapped, optimizer, state["optimizer"], options=StateDictOptions(full_state_dict=True))
        lr_schedule.load_state_dict(state["scheduler"])
        ema.load_full_state_dict(state["ema"])
        start = state["step"]
        if rank == 0:
            print(f"resumed from {resume_from} at step {start}", flush=True)
            if start >= cfg.max_steps:
                print(f"{output}: training complete at step {start} (max_steps={cfg.max_steps})", flush=True)

    sampler = ResumableBatchSampler(len(train_set), cfg.data.batch_size, cfg.seed, rank, world)
    sampler.epoch, sampler.batch_in_epoch = ResumableBatchSampler.position(start, sampler.batches_per_epoch)
    loader = DataLoader(train_set, batch_sampler=sampler, num_workers=cfg.data.num_workers, pin_memory=use_bf16)
    batches = iter(loader)
    height, width = train_set[0]["video"].shape[-2:]
    x_mask = torch.zeros(cfg.data.batch_size, cfg.data.context_frames + cfg.data.target_frames, dtype=torch.bool)
    x_mask[:, cfg.data.context_frames :] = True
    x_mask = x_mask.to(device)

    log = MetricLog(output, cfg.tensorboard, start) if rank == 0 else None
    val_model = STDiT3(preset(cfg.model.preset)).to(device).eval() if rank == 0 else None
    val_ids = validation_indices(val_set, cfg.val_windows)
    metrics: dict[str, float] = {}

    def checkpoint(step: int, ema_state: dict) -> None:
        model_state = get_model_state_dict(wrapped, options=full)
        optim_state = get_optimizer_state_dict(wrapped, optimizer, options=full)
        if rank == 0:
            save_checkpoint(output, step, model_state, ema_state, optim_state, lr_schedule.state_dict(), cfg.keep_last)

    def run_validation(step: int, ema_state: dict) -> None:
        if rank != 0:
            return
        val_model.load_state_dict(ema_state)
        scheduler.config.num_sampling_steps = cfg.val_sampling_steps
        strip = output / "validation" / f"step_{step:07d}"
        with autocast:
            result = validate(val_model, vae, scheduler, val_set, val_ids, cfg.seed, device, strip)
        metrics.update({f"val/{k}": v for k, v in result.items()})
        log.write(step, {f"val/{k}": v for k, v in result.items()})
        tqdm.write(f"step {step} validation: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()))

    progress = tqdm(
        range(start, cfg.max_steps),
        initial=start,
        total=cfg.max_steps,
        disable=rank != 0,
        desc="train",
        mininterval=0.5 if sys.stderr.isatty() else 30.0,
    )
    window_time, window_start = 0, time.perf_counter()
    with StopOnSignal() as stop:
        for step in progress:
            batch = next(batches)
            video, actions = batch["video"].to(device), batch["actions"].to(device)
            generator = step_generator(cfg.seed, rank, step, device)
            with torch.no_grad(), autocast:
                latents = vae.encode(video, generator=generator).float()
            with autocast:
                loss = scheduler.training_loss(wrapped, latents, actions, x_mask, height, width, generator).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            grad_norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
            if not math.isfinite(grad_norm):
                # Before the step: the weights, the EMA and the checkpoints on disk stay the last good ones.
                raise FloatingPointError(f"non-finite loss or gradient norm at step {step} (loss "
                                         f"{float(loss.detach()):.4g}); training stopped, the last good checkpoint is "
                                         f"{latest_checkpoint(output)}")
            optimizer.step()
            lr_schedule.step()
            ema.update(model)
            window_time += 1
            done = step + 1
            if done % cfg.log_every == 0 or done == cfg.max_steps:
                reduced = loss.detach().clone()
                if world > 1:
                    dist.all_reduce(reduced, op=dist.ReduceOp.AVG)
                elapsed = time.perf_counter() - window_start
                metrics.update(
                    {
                        "loss": float(reduced),
                        "grad_norm": grad_norm,
                        "lr": lr_schedule.get_last_lr()[0],
                        "windows_per_s": window_time * cfg.data.batch_size * world / elapsed,
                    }
                )
                window_time, window_start = 0, time.perf_counter()
                if log is not None:
                    log.write(done, {k: v for k, v in metrics.items() if not k.startswith("val/")})
                    progress.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{metrics['lr']:.2e}")
            save = done % cfg.ckpt_every == 0 or done == cfg.max_steps
            check = bool(val_ids) and ((cfg.val_every and done % cfg.val_every == 0) or done == cfg.max_steps)
            if save or check:
                ema_state = ema.full_state_dict()  # gathered once when a step both saves and validates
                if save:
                    checkpoint(done, ema_state)
                if check:
                    run_validation(done, ema_state)
            if stop_requested(stop, world, device):
                if not save:
                    checkpoint(done, ema.full_state_dict())
                raise Interrupted(f"stopped by {stop.requested or 'a signal to another rank'} after step {done}; "
                                  f"checkpoint {checkpoint_dir(output, done)}; rerun the same command to continue")
    if log is not None:
        log.close()
    if world > 1:
        dist.destroy_process_group()
    return metrics


@reports_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML training config (configs/world_model/...)")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved configuration and exit")
    args, overrides = parser.parse_known_args(argv)
    cfg = load_config(args.config, overrides)
    if args.dry_run:
        print(to_yaml(cfg))
        problems = [f"no shards match {s}" for s in cfg.data.shards if not glob.glob(s)]
        for path in (cfg.data.stats, cfg.model.init_from, cfg.model.vae_path):
            if path and not Path(path).exists():
                problems.append(f"not found: {path}")
        for problem in problems:
            print(f"warning: {problem}", file=sys.stderr)
        return
    train(cfg)


if __name__ == "__main__":
    main()
