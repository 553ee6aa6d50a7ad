"""Train the VideoMAE success classifier on episode shards.

    python scripts/train_reward_model.py shards=[data_files/example_rollouts/square_1280_demos] \\
        val_shards=[data_files/example_rollouts/square_128_demos] init_from=... output=outputs/reward/square
    torchrun --nproc_per_node 8 scripts/train_reward_model.py ...              # data-parallel

Each step samples ``episodes_per_step`` episodes per rank and trains on their end clips (label = the episode's
``complete``) and one random earlier clip each (label 0): cross-entropy, AdamW. Every ``eval_every`` steps the
held-out end clips and every 8th earlier clip are scored with sigmoid(logit 1); precision/recall/F1 over the released
threshold grid are logged, and the best-F1 model is saved as ``reward_model.pth`` (released format) with
``threshold.json`` beside it. ``checkpoint.pt`` (model, optimizer, step) lets a rerun resume.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from opensora.datasets.shards import index_episodes
from opensora.errors import reports_errors
from opensora.training.checkpointing import drop_rows_after
from wmpo.cli import parse_config
from wmpo.reward.model import build_reward_model, load_reward_model, save_reward_model
from wmpo.reward.preprocessing import preprocess_clips
from wmpo.reward.scoring import window_scores
from wmpo.reward.training import check_frame_sizes, threshold_metrics, training_clips, validation_clips


@dataclass
class Config:
    shards: list[str] = field(default_factory=list)
    """Training episode shards (directories or globs)."""
    val_shards: list[str] = field(default_factory=list)
    """Held-out episode shards; empty = the last val_episodes training episodes."""
    val_episodes: int = 16
    """Episodes held out when val_shards is empty."""
    preset: str = "base"
    """Classifier size: base (VideoMAE-base) or tiny."""
    init_from: str | None = None
    """A reward-model .pth to start from (released or this project's format)."""
    output: str = "outputs/reward_model/run"
    """Run directory."""
    steps: int = 20000
    """Optimizer steps."""
    episodes_per_step: int = 4
    """Episodes sampled per rank and step (each gives an end clip and an earlier clip)."""
    lr: float = 1e-4
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    eval_every: int = 500
    """Steps between evaluations (and best-model saves)."""
    window: int = 8
    """Frames per clip."""
    val_stride: int = 8
    """Spacing of the earlier negative clips in validation."""
    seed: int = 0
    """Seed of the episode and clip sampling."""
    resume: bool = True
    """Continue from output/checkpoint.pt when it exists."""


def setup() -> tuple[int, int, torch.device]:
    if "RANK" not in os.environ:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return dist.get_rank(), dist.get_world_size(), torch.device("cuda", local)
    return dist.get_rank(), dist.get_world_size(), torch.device("cpu")


@torch.no_grad()
def evaluate(model, clips: np.ndarray, labels: np.ndarray, size: int, device: torch.device) -> dict:
    model.eval()
    scores = []
    for start in range(0, len(clips), 64):
        pixels = preprocess_clips(torch.from_numpy(clips[start : start + 64]).to(device), size)
        scores.append(window_scores(model, pixels).cpu())
    model.train()
    return threshold_metrics(torch.cat(scores).numpy(), labels)


def train(cfg: Config) -> dict:
    rank, world, device = setup()
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    episodes = index_episodes(list(cfg.shards))
    if cfg.val_shards:
        val_episodes = index_episodes(list(cfg.val_shards))
    else:
        if len(episodes) <= cfg.val_episodes:
            raise ValueError(f"{len(episodes)} episodes; need more than val_episodes={cfg.val_episodes}")
        episodes, val_episodes = episodes[: -cfg.val_episodes], episodes[-cfg.val_episodes :]
    check_frame_sizes(episodes + val_episodes)
    val_clips, val_labels = validation_clips(val_episodes, cfg.window, cfg.val_stride)

    torch.manual_seed(cfg.seed)
    model = load_reward_model(cfg.init_from, cfg.preset) if cfg.init_from else build_reward_model(cfg.preset)
    model = model.to(device).train()
    size = int(model.config.image_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, best = 0, {"f1": -1.0}
    checkpoint = output / "checkpoint.pt"
    if cfg.resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start, best = state["step"], state["best"]
        if rank == 0:
            print(f"resumed from {checkpoint} at step {start}")
    trained = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if rank == 0:
        drop_rows_after(output / "metrics.jsonl", start, key="step")
    log = open(output / "metrics.jsonl", "a") if rank == 0 else None

    interval = 0.5 if sys.stderr.isatty() else 30.0
    steps = tqdm(
        range(start, cfg.steps), initial=start, total=cfg.steps, disable=rank != 0, desc="reward", mininterval=interval
    )
    for step in steps:
        rng = np.random.default_rng([cfg.seed, rank, step])
        picked = [episodes[i] for i in rng.integers(0, len(episodes), size=cfg.episodes_per_step)]
        clips, labels = training_clips(picked, rng, cfg.window)
        pixels = preprocess_clips(torch.from_numpy(clips).to(device), size)
        targets = torch.from_numpy(labels).to(device)
        loss = torch.nn.functional.cross_entropy(trained(pixel_values=pixels).logits.float(), targets)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite reward-model loss at step {step}; {checkpoint} and "
                                     f"{output / 'reward_model.pth'} are left as they were")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        done, loss = step + 1, loss.item()
        if rank == 0 and (done % cfg.eval_every == 0 or done == cfg.steps):
            metrics = evaluate(model, val_clips, val_labels, size, device)
            record = {"step": done, "loss": loss, "accuracy": metrics["accuracy"], **metrics["best"]}
            log.write(json.dumps(record) + "\n")
            log.flush()
            best_now = metrics["best"]
            tqdm.write(f"step {done}: loss {loss:.4f}, best F1 {best_now['f1']:.3f} at {best_now['threshold']:.3f}")
            if metrics["best"]["f1"] > best["f1"]:
                best = {**metrics["best"], "step": done}
                save_reward_model(model, output / "reward_model.pth")
                (output / "threshold.json").write_text(json.dumps(best, indent=2) + "\n")
            tmp = checkpoint.with_suffix(".tmp")
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": done, "best": best}
            torch.save({**state, "config": asdict(cfg)}, tmp)
            tmp.replace(checkpoint)
    if log is not None:
        log.close()
    if world > 1:
        dist.destroy_process_group()
    return best


@reports_errors
def main() -> None:
    train(parse_config(Config, doc=__doc__))


if __name__ == "__main__":
    main()
