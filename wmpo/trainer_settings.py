"""The WMPO trainer's settings, checked before any model is built: each bad value is named with its allowed range."""

from __future__ import annotations

import logging
from pathlib import Path

from opensora.training.checkpointing import incompleteness
from opensora.world_model import COMPILE_MODES
from opensora.training.settings import SettingError, check_settings
from wmpo.policy.checkpoint import policy_folder_problem
from wmpo.trainer_config import needs_imagination

log = logging.getLogger("wmpo")

BACKENDS = ("auto", "builtin", "mimicgen")
DEVICES = ("auto", "cpu", "cuda")
ALGORITHMS = ("grpo", "dpo")


def _positive_or_none(value) -> bool:
    return value is None or value >= 1


def check_trainer_settings(cfg) -> None:
    """Raise SettingError for the first out-of-range value or missing path of a TrainerConfig; resolve
    ``update.temperature`` (None follows the rollout temperature; a different explicit value is reported)."""
    icfg, ecfg, ucfg = cfg.imagination, cfg.evaluation, cfg.update
    evaluates = cfg.val_only or cfg.test_freq > 0
    check_settings([
        (cfg.iterations >= 0, "iterations", cfg.iterations, "≥ 0"),
        (cfg.train_batch_size >= 1, "train_batch_size", cfg.train_batch_size, "≥ 1"),
        (cfg.n_samples >= 1, "n_samples", cfg.n_samples, "≥ 1"),
        (cfg.rollout_batch_size >= 1, "rollout_batch_size", cfg.rollout_batch_size, "≥ 1"),
        (cfg.max_generation_rounds >= 1, "max_generation_rounds", cfg.max_generation_rounds, "≥ 1"),
        (0.0 <= cfg.accuracy_lower_bound <= 1.0, "accuracy_lower_bound", cfg.accuracy_lower_bound, "in [0, 1]"),
        (cfg.accuracy_lower_bound <= cfg.accuracy_upper_bound <= 1.0, "accuracy_upper_bound",
         cfg.accuracy_upper_bound, f"in [accuracy_lower_bound={cfg.accuracy_lower_bound}, 1]"),
        (cfg.algorithm in ALGORITHMS, "algorithm", cfg.algorithm, " or ".join(ALGORITHMS)),
        (cfg.algorithm != "dpo" or bool(cfg.dpo.shards), "dpo.shards", cfg.dpo.shards,
         "at least one shard path (algorithm=dpo)"),
        (cfg.dpo.beta > 0, "dpo.beta", cfg.dpo.beta, "> 0"),
        (cfg.monitors.replay_episodes >= 0, "monitors.replay_episodes", cfg.monitors.replay_episodes, "≥ 0"),
        (cfg.coevolve.every >= 0, "coevolve.every", cfg.coevolve.every, "≥ 0 (0 = never)"),
        (cfg.coevolve.trajectories >= 1, "coevolve.trajectories", cfg.coevolve.trajectories, "≥ 1"),
        (cfg.coevolve.wm_steps >= 1, "coevolve.wm_steps", cfg.coevolve.wm_steps, "≥ 1"),
        (not cfg.coevolve.every or cfg.val_only or needs_imagination(cfg), "coevolve.every",
         cfg.coevolve.every, "0 unless the run imagines with algorithm=grpo"),
        (cfg.temperature > 0, "temperature", cfg.temperature, "> 0"),
        (ucfg.temperature is None or ucfg.temperature > 0, "update.temperature", ucfg.temperature, "> 0 or null"),
        (cfg.lr >= 0, "lr", cfg.lr, "≥ 0"),
        (cfg.weight_decay >= 0, "weight_decay", cfg.weight_decay, "≥ 0"),
        (ucfg.clip_ratio_low >= 0, "update.clip_ratio_low", ucfg.clip_ratio_low, "≥ 0"),
        (ucfg.clip_ratio_high >= 0, "update.clip_ratio_high", ucfg.clip_ratio_high, "≥ 0"),
        (ucfg.ppo_mini_batch_size >= 1, "update.ppo_mini_batch_size", ucfg.ppo_mini_batch_size, "≥ 1"),
        (_positive_or_none(ucfg.traj_mini_batch_size), "update.traj_mini_batch_size", ucfg.traj_mini_batch_size,
         "≥ 1 or null"),
        (ucfg.grad_clip > 0, "update.grad_clip", ucfg.grad_clip, "> 0"),
        (cfg.test_freq >= 0, "test_freq", cfg.test_freq, "≥ 0 (0 = never)"),
        (cfg.save_freq >= 1, "save_freq", cfg.save_freq, "≥ 1"),
        (cfg.keep_last >= 1, "keep_last", cfg.keep_last, "≥ 1 (fewer would delete every checkpoint)"),
        (cfg.max_restarts >= 0, "max_restarts", cfg.max_restarts, "≥ 0"),
        (cfg.video_groups >= 0, "video_groups", cfg.video_groups, "≥ 0"),
        (cfg.num_workers >= 0, "num_workers", cfg.num_workers, "≥ 0"),
        (cfg.cpus_per_worker > 0, "cpus_per_worker", cfg.cpus_per_worker, "> 0"),
        (cfg.device in DEVICES, "device", cfg.device, " or ".join(DEVICES)),
        (icfg.image_size >= 16 and icfg.image_size % 8 == 0, "imagination.image_size", icfg.image_size,
         "a multiple of 8, ≥ 16"),
        (_positive_or_none(icfg.max_steps), "imagination.max_steps", icfg.max_steps, "≥ 1 or null"),
        (icfg.min_steps >= 0, "imagination.min_steps", icfg.min_steps, "≥ 0"),
        (icfg.slots >= 0, "imagination.slots", icfg.slots, "≥ 0 (0 = a whole generation round at once)"),
        (icfg.world_model.compile in COMPILE_MODES, "imagination.world_model.compile", icfg.world_model.compile,
         " or ".join(COMPILE_MODES)),
        # 1.0 is the top of the released threshold grid (a classifier that never fires there is still valid).
        (icfg.rm_threshold is None or 0.0 < icfg.rm_threshold <= 1.0, "imagination.rm_threshold",
         icfg.rm_threshold, "in (0, 1] or null"),
        (not evaluates or ecfg.states >= 1, "evaluation.states", ecfg.states, "≥ 1"),
        (ecfg.workers >= 1, "evaluation.workers", ecfg.workers, "≥ 1"),
        (ecfg.videos >= 0, "evaluation.videos", ecfg.videos, "≥ 0"),
        (ecfg.backend in BACKENDS, "evaluation.backend", ecfg.backend, " or ".join(BACKENDS)),
    ])
    _check_paths(cfg)
    if ucfg.temperature is None:
        ucfg.temperature = cfg.temperature
    elif ucfg.temperature != cfg.temperature:
        log.warning("update.temperature=%s differs from temperature=%s: the PPO ratio's log-probs use another "
                    "temperature than the sampler's", ucfg.temperature, cfg.temperature)


def _check_paths(cfg) -> None:
    icfg = cfg.imagination
    required = [("evaluation.initial_states", cfg.evaluation.initial_states)]
    if not cfg.create_missing_assets:
        required += [("initial_states", cfg.initial_states)]
    if needs_imagination(cfg):
        required += [("imagination.reward_model_path", icfg.reward_model_path),
                     ("imagination.world_model.model_path", icfg.world_model.model_path),
                     ("imagination.world_model.vae_path", icfg.world_model.vae_path)]
    for key, path in required:
        if path and not Path(path).exists():
            raise SettingError(f"{key}={path}: no such file or folder")
    if cfg.coevolve.every:
        run = cfg.coevolve.world_model_run
        if not run or not (Path(run) / "config.yaml").is_file():
            raise SettingError(f"coevolve.world_model_run={run}: not a world-model training run (no config.yaml); "
                               "co-evolution continues the run that trained imagination.world_model.model_path")
    # The quickstart writes a missing policy; a folder that exists must be one.
    problem = policy_folder_problem(cfg.policy_path)
    if problem and (Path(cfg.policy_path).exists() or not cfg.create_missing_assets):
        raise SettingError(f"policy_path={cfg.policy_path}: {problem}")
    if cfg.resume not in ("auto", "none"):
        problem = incompleteness(cfg.resume)
        if problem:
            raise SettingError(f"resume={cfg.resume}: not a complete trainer checkpoint ({problem}); use auto, none "
                               "or a checkpoints/iteration_NNNNNN folder")
