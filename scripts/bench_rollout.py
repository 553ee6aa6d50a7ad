"""Imagined-rollout throughput of whole groups (policy → world model → VAE decode → reward scoring): the released
behaviour (context recomputed at every denoising step, every trajectory generated to the horizon) against this
project's (context cached once per chunk, a trajectory stops at its first success window), and their ratio.

    python scripts/bench_rollout.py                                   # quickstart's tiny models on the CPU
    python scripts/bench_rollout.py config=configs/mimicgen.yaml groups=2 device=cuda \\
        policy_path=checkpoint_files/SFT_models/square initial_states=data_files/initial_states/square

The gain from stopping depends on how many trajectories succeed, so it shows with trained checkpoints (random
models rarely pass the reward threshold); ``success`` reports the imagined success rate of each mode. After the timed
repeats, one more call per mode reports where its time goes (policy forward, denoiser, VAE, reward scoring,
everything else) from the generation profile the trainer logs too (on CUDA it synchronizes the device around each
part, in the timed repeats as in training); that call is not part of the throughput. Last, it
compares the trajectories both modes generated, up to where this project's mode stopped each.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from wmpo.benchmarking import interleaved, ratio_of_medians, spread
from wmpo.cli import parse_config


@dataclass
class Config:
    config: str = "configs/quickstart.yaml"
    """Trainer configuration the models, horizon and sampler come from."""
    groups: int = 2
    """Initial states rolled together (each with the configuration's n_samples trajectories)."""
    repeats: int = 3
    """Timed runs per mode, interleaved with the other mode's, after one untimed warm-up run each."""
    device: str = "cpu"
    """Device of the models."""
    policy_path: str | None = None
    """Policy checkpoint; default: the configuration's, or a tiny random policy when that does not exist."""
    initial_states: str | None = None
    """Initial-state folder for the first frames; default: random frames."""
    slots: int = 0
    """When > 0, a third mode: this project's defaults with that many trajectories imagined together and freed slots
    refilled (continuous batching), against the whole round at once."""
    overrides: list[str] = field(default_factory=list)
    """Further trainer settings, e.g. [imagination.world_model.num_sampling_steps=10]."""


def rollout_mode(cfg, task, policy, first_frames, use_cache: bool, stop_on_success: bool, slots: int = 0):
    """A callable generating one group batch in the given mode (the trainer's rollout path, precision included)."""
    from wmpo.workers.policy_host import PolicyHost

    mode_cfg = copy.deepcopy(cfg)
    mode_cfg.imagination.world_model.use_cache = use_cache
    mode_cfg.imagination.stop_on_success = stop_on_success
    mode_cfg.imagination.slots = slots
    torch.manual_seed(0)
    host = PolicyHost(mode_cfg, task, policy, policy.device)
    ids = list(range(len(first_frames)))
    last = {}

    def run() -> None:
        last["batch"] = host.generate(first_frames, ids, ids, seed=cfg.seed, record_videos=False)

    return run, last, host


def phase_split(run, host, sync) -> str:
    """Seconds of one call of ``run`` per part of the rollout (the host's generation profile), with shares of its
    wall time."""
    host.generation_profile()  # drop what the timed repeats accumulated
    (sync or (lambda: None))()
    start = time.perf_counter()
    run()
    (sync or (lambda: None))()
    total = time.perf_counter() - start
    record = host.generation_profile()
    names = {"policy": "policy", "denoiser": "denoiser", "vae": "VAE", "reward": "reward scoring"}
    parts = {name: record[f"{phase}_s"] for phase, name in names.items()}
    parts["other"] = max(total - sum(parts.values()), 0.0)
    return "  ".join(f"{name} {sec:.3f} s ({100 * sec / total:.0f}%)" for name, sec in parts.items())


def describe(batch, chunk: int) -> str:
    frames = int(batch.num_chunks.sum()) * chunk + len(batch)  # generated, first included
    return (f"{frames:6d} frames  {int(batch.num_chunks.sum()):5d} policy queries  "
            f"success {float(batch.complete.float().mean()):.3f}")


def agreement(released, ours) -> str:
    """How far the trajectories of both modes agree, each up to where this project's mode stopped it: the same
    generators drive both, so they differ only through the sampler's arithmetic (cached context vs recomputed)."""
    same_tokens, frame_diff = 0, 0
    for row in range(len(ours)):
        chunks = int(ours.num_chunks[row])
        same_tokens += bool(torch.equal(released.responses[row, :chunks], ours.responses[row, :chunks]))
        difference = (released.frames[row, :chunks].int() - ours.frames[row, :chunks].int()).abs()
        frame_diff = max(frame_diff, int(difference.max()) if difference.numel() else 0)
    return (f"trajectories with the same action tokens up to the stopping point: {same_tokens} of {len(ours)}; "
            f"largest difference of the frames the policy saw: {frame_diff} (of 255)")


def main() -> None:
    from wmpo.envs.initial_states import load_initial_states
    from wmpo.policy import load_policy
    from wmpo.policy.tiny import write_tiny_checkpoint
    from wmpo.tasks import get_task
    from wmpo.trainer_config import load_trainer_config

    args = parse_config(Config, doc=__doc__)
    cfg = load_trainer_config(args.config, args.overrides)
    task = get_task(cfg.task)
    policy_path = Path(args.policy_path or cfg.policy_path)
    scratch = tempfile.TemporaryDirectory()
    if not policy_path.exists():
        policy_path = write_tiny_checkpoint(Path(scratch.name) / "policy", seed=cfg.seed)
    policy = load_policy(policy_path, task.unnorm_key, device=args.device)
    size = cfg.imagination.image_size
    if args.initial_states:
        from wmpo.data.frames import resize_frames

        frames = load_initial_states(Path(args.initial_states), task=task.name).frames[: args.groups]
        first_frames = torch.from_numpy(resize_frames(frames, size))
    else:
        first_frames = torch.randint(0, 256, (args.groups, size, size, 3), generator=torch.Generator().manual_seed(0),
                                     dtype=torch.uint8)
    names = {"released": "released (recompute, full horizon)", "ours": "cached + stop at success"}
    built = {"released": rollout_mode(cfg, task, policy, first_frames, use_cache=False, stop_on_success=False),
             "ours": rollout_mode(cfg, task, policy, first_frames, use_cache=True, stop_on_success=True)}
    if args.slots:
        names["slots"] = f"cached + stop, {args.slots} slots refilled"
        built["slots"] = rollout_mode(cfg, task, policy, first_frames, use_cache=True, stop_on_success=True,
                                      slots=args.slots)
    sync = torch.cuda.synchronize if policy.device.type == "cuda" else None
    times = interleaved({name: run for name, (run, _, _) in built.items()}, repeats=args.repeats, sync=sync)
    wm = cfg.imagination.world_model
    print(f"{task.name}: {args.groups} groups x {cfg.n_samples} trajectories, {wm.model_preset} + {wm.vae_preset} VAE, "
          f"{size}px, {wm.num_sampling_steps} steps, horizon {cfg.imagination.max_steps or task.max_steps}, "
          f"{args.device}")
    print(f"{args.repeats} interleaved repeats after one warm-up call per mode; median [min–max] per batch")
    for name, (_, last, host) in built.items():
        batch = last["batch"]
        rate = len(batch) / statistics.median(times[name])
        print(f"{names[name]:36s} {rate:8.3f} trajectories/s  {spread(times[name])}  "
              f"{describe(batch, host.env.wm.spec.chunk)}")
    print("where the time goes, one instrumented call per mode:")
    for name, (run, _, host) in built.items():
        print(f"  {name:9s} {phase_split(run, host, sync)}")
    print(agreement(built["released"][1]["batch"], built["ours"][1]["batch"]))
    if args.slots:
        print(f"ratio of medians (trajectories/s, {args.slots} slots refilled vs the whole round at once): "
              f"{ratio_of_medians(times['ours'], times['slots']):.2f}x")
    print(f"ratio of medians (trajectories/s, cached + stop at success vs released): "
          f"{ratio_of_medians(times['released'], times['ours']):.2f}x")


if __name__ == "__main__":
    main()
