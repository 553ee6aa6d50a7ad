"""The WMPO driver loop: imagined rollouts → informative groups → GRPO update → periodic real evaluation.

One iteration: roll ``n_samples`` imagined trajectories from each of at least ``train_batch_size`` initial states
(more rounds until enough groups have mixed outcomes; surplus groups wait in a buffer for the next iteration),
compute GRPO advantages, update the policy, and every ``test_freq`` iterations evaluate greedily in the real
simulator. Checkpoints carry everything needed to continue the run exactly. With ``imagination.enable=false`` the
rollouts run in the real simulator (the baseline); ``val_only=true`` only evaluates.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from opensora.training.checkpointing import require_complete
from opensora.training.interrupts import Interrupted, StopOnSignal
from wmpo.trainer_checkpoint import checkpoint_path, latest_checkpoint, load_trainer_state, save_checkpoint, set_rng_state
from wmpo.coevolution import Coevolution
from wmpo.data.frames import resize_frames
from wmpo.logging import MetricLogger, write_video
from wmpo.rl.group_buffer import GroupBuffer
from wmpo.rl.grpo import grpo_advantages, informative_groups, token_level_rewards
from wmpo.rollout.profiling import profile_metrics, time_shares
from wmpo.rollout.trajectories import Trajectories, concat_trajectories
from wmpo.workers.backends import LocalBackend, RayBackend
from wmpo.tasks import get_task
from wmpo.threads import cpu_threads
from wmpo.trainer_config import TrainerConfig, needs_imagination
from wmpo.trainer_settings import check_trainer_settings

log = logging.getLogger("wmpo")


def rollout_calls(cfg: TrainerConfig) -> list[int]:
    """Groups per generation call in one round: ``train_batch_size`` in calls of ``rollout_batch_size``, each call
    with at least one group per Ray worker (groups beyond the batch wait in the buffer)."""
    sizes, first = [], 0
    while first < cfg.train_batch_size:
        sizes.append(max(min(cfg.rollout_batch_size, cfg.train_batch_size - first), cfg.num_workers))
        first += sizes[-1]
    return sizes


def resolve_device(cfg: TrainerConfig) -> str:
    """``auto``: CUDA when this machine has it or, with Ray workers, when the Ray cluster has GPUs (the driver may
    run on a head node without any)."""
    if cfg.device != "auto":
        return cfg.device
    if torch.cuda.is_available():
        return "cuda"
    if cfg.num_workers > 0:
        import ray

        from wmpo.distributed.worker_group import init_ray

        init_ray()
        return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"
    return "cpu"


def absolute_paths(cfg: TrainerConfig) -> TrainerConfig:
    """The configuration with its file paths made absolute: Ray workers do not run in the driver's directory (and
    on several nodes they need the paths on a shared filesystem)."""
    icfg = cfg.imagination
    if cfg.resume not in ("auto", "none"):
        cfg.resume = str(Path(cfg.resume).resolve())
    for owner, name in [(cfg, "policy_path"), (cfg, "initial_states"), (cfg, "output"), (icfg, "reward_model_path"),
                        (icfg.world_model, "model_path"), (icfg.world_model, "vae_path"),
                        (cfg.evaluation, "initial_states"), (cfg.coevolve, "world_model_run")]:
        if getattr(owner, name):
            setattr(owner, name, str(Path(getattr(owner, name)).resolve()))
    cfg.dpo.shards = [str(Path(pattern).resolve()) for pattern in cfg.dpo.shards]
    return cfg


def create_missing_assets(cfg: TrainerConfig, task) -> None:
    """A tiny random policy and a small initial-state set, for runs without released files."""
    from wmpo.policy.tiny import write_tiny_checkpoint

    if not Path(cfg.policy_path).exists():
        log.info("writing a tiny random policy to %s", cfg.policy_path)
        write_tiny_checkpoint(cfg.policy_path, seed=cfg.seed)
    if not Path(cfg.initial_states).exists():
        from wmpo.envs.factory import make_env
        from wmpo.envs.initial_states import sample_initial_states, save_initial_states

        count = max(cfg.evaluation.states, cfg.train_batch_size)
        log.info("sampling %d %s initial states into %s", count, task.env_name, cfg.initial_states)
        env = make_env(task.name, backend=cfg.evaluation.backend)
        states, frames = sample_initial_states(env, count, seed=cfg.seed)
        save_initial_states(Path(cfg.initial_states), task.name, env.backend, cfg.seed, states, frames)
        env.close()


class Trainer:
    def __init__(self, cfg: TrainerConfig) -> None:
        check_trainer_settings(cfg)
        self.cfg = cfg = absolute_paths(cfg)
        self.task = get_task(cfg.task)
        if cfg.update.traj_mini_batch_size is None:
            cfg.update.traj_mini_batch_size = self.task.traj_mini_batch_size
        self.output = Path(cfg.output)
        self.output.mkdir(parents=True, exist_ok=True)
        if not cfg.val_only:
            (self.output / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
        self.device = torch.device(resolve_device(cfg))
        if cfg.create_missing_assets:
            self._create_missing_assets()
        if cfg.num_workers > 0:
            self.backend = RayBackend(cfg, use_gpu=self.device.type == "cuda")
        else:
            self.backend = LocalBackend(cfg, self.task, self.device)
        from wmpo.envs.initial_states import load_initial_states

        self.states = load_initial_states(Path(cfg.initial_states), task=self.task.name)
        self.first_frames = torch.from_numpy(resize_frames(self.states.frames, cfg.imagination.image_size))
        self.eval_states = self.states
        if cfg.evaluation.initial_states:
            self.eval_states = load_initial_states(Path(cfg.evaluation.initial_states), task=self.task.name)
        self.monitoring = self._monitoring()
        self.coevolution = None
        if cfg.coevolve.every and not cfg.val_only:
            self.coevolution = Coevolution(cfg, self.task, self.states, self.output)
        self.buffer = GroupBuffer()
        self.iteration, self.next_group = 0, 0
        self.last_saved: Path | None = None
        """The checkpoint this trainer wrote last (None before its first)."""
        self._maybe_resume()
        # A val_only run leaves the training run's metrics, W&B run and videos as they are; a resumed one drops the
        # rows logged past its checkpoint.
        self.logger = None
        if not cfg.val_only:
            self.logger = MetricLogger(self.output, cfg.tensorboard, cfg.wandb_project, asdict(cfg),
                                       resume_at=self.iteration)

    # -- construction -----------------------------------------------------------------------------------------------

    def _create_missing_assets(self) -> None:
        create_missing_assets(self.cfg, self.task)

    def _monitoring(self) -> bool:
        """Whether evaluations measure the learned models' fidelity (which needs them and the policy here)."""
        cfg = self.cfg
        if not cfg.monitors.enable:
            return False
        if not needs_imagination(cfg) or not isinstance(self.backend, LocalBackend):
            log.warning("monitors.enable=true is ignored: the fidelity monitors need imagination and the policy in "
                        "the driver process (num_workers=0)")
            return False
        self.eval_first_frames = torch.from_numpy(resize_frames(self.eval_states.frames,
                                                                cfg.imagination.image_size))
        return True

    def _maybe_resume(self) -> None:
        cfg = self.cfg
        if cfg.resume == "auto":
            path = latest_checkpoint(self.output)
        else:
            path = None if cfg.resume == "none" else require_complete(cfg.resume)
        if path is None:
            return
        self.backend.load(path)
        state = load_trainer_state(path)
        set_rng_state(state["rng"])
        self.buffer.load_state_dict(state["buffer"])
        self.iteration, self.next_group = state["iteration"], state["next_group"]
        if self.coevolution is not None and "coevolve" in state:
            weights = self.coevolution.load(state["coevolve"], path)
            if weights is not None:
                self.backend.reload_world_model(weights)
        log.info("resumed from %s at iteration %d", path, self.iteration)

    # -- one iteration ----------------------------------------------------------------------------------------------

    def _state_order(self, group: int) -> int:
        """Initial state of the ``group``-th group: a seeded permutation per pass over the states."""
        count = len(self.states)
        epoch, index = divmod(group, count)
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(count)
        return int(order[index])

    def generate(self) -> tuple[Trajectories, dict[str, float]]:
        """Roll groups (imagined, or in the simulator for the baseline) until ``train_batch_size`` informative groups
        are available (buffer first)."""
        cfg = self.cfg
        kept = self.buffer.take(cfg.train_batch_size)
        rounds, generated, informative, successes, frames = 0, 0, 0, [], 0
        start = time.perf_counter()
        while len(kept) < cfg.train_batch_size and rounds < cfg.max_generation_rounds:
            rounds += 1
            for count in rollout_calls(cfg):
                groups = list(range(self.next_group, self.next_group + count))
                self.next_group += count
                state_ids = [self._state_order(g) for g in groups]
                seed = cfg.seed * 1_000_003 + groups[0]
                if cfg.imagination.enable:
                    batch, recorded = self.backend.generate(
                        self.first_frames[state_ids], state_ids, groups, seed=seed,
                        record_videos=generated < cfg.video_groups,
                    )
                    if recorded is not None:
                        self._save_imagined_videos(recorded)
                else:
                    batch = self._simulate(state_ids, groups, seed)
                generated += count
                frames += int(batch.finish_step.sum()) + len(batch)
                successes.append(batch.complete.float())
                keep = informative_groups(batch.complete, batch.group, cfg.accuracy_lower_bound,
                                          cfg.accuracy_upper_bound)
                informative += len(keep)
                kept += [batch[batch.group == g] for g in keep]
        elapsed = time.perf_counter() - start
        if len(kept) > cfg.train_batch_size:
            self.buffer.add(kept[cfg.train_batch_size :])
            kept = kept[: cfg.train_batch_size]
        queries = sum(int(part.num_chunks.sum()) for part in kept) if kept else 0
        metrics = {
            "rollout/success": float(torch.cat(successes).mean()) if successes else float("nan"),
            "rollout/kept_group_fraction": informative / max(1, generated),
            "rollout/generation_rounds": rounds,
            "rollout/trajectories": generated * cfg.n_samples,
            "rollout/groups_kept": len(kept),
            "rollout/buffered_groups": len(self.buffer),
            "perf/frames_per_s": frames / max(elapsed, 1e-9),
            "perf/kept_policy_queries_per_s": queries / max(elapsed, 1e-9),
            "time/generate_s": elapsed,
        }
        if cfg.imagination.enable:
            metrics.update(profile_metrics(self.backend.generation_profiles()))
        return (concat_trajectories(kept) if kept else None), metrics

    def _simulate(self, state_ids: list[int], groups: list[int], seed: int) -> Trajectories:
        from wmpo.envs.vector import VectorRunner
        from wmpo.rollout.simulated import simulate_groups

        if getattr(self, "sim_runner", None) is None:
            ecfg = self.cfg.evaluation
            # GRPO needs only the frames the policy sees: rendering every step would triple the simulator's cost.
            self.sim_runner = VectorRunner(self.task, backend=ecfg.backend or self.states.backend,
                                           num_workers=ecfg.workers, record_frames=False)
        states = [self.states.states[i] for i in state_ids]
        with cpu_threads(1, enabled=self.device.type == "cpu"):
            return simulate_groups(self.backend.sample, self.sim_runner, states, state_ids, groups,
                                   self.cfg.n_samples, self.backend.prompt(self.task.prompt),
                                   self.backend.token_begin, seed)

    def _save_imagined_videos(self, batch: Trajectories) -> None:
        folder = self.output / "videos" / f"iteration_{self.iteration + 1:06d}"
        for row in range(min(len(batch), self.cfg.n_samples)):
            end = int(batch.finish_step[row]) + 1
            outcome = "success" if bool(batch.complete[row]) else "failure"
            scores = batch.frame_scores[row, :end].tolist() if batch.frame_scores is not None else [float("nan")] * end
            captions = [f"{t} {s:.2f}" if s == s else f"{t}" for t, s in enumerate(scores)]  # frame, RM score
            write_video(folder / f"imagined_state{int(batch.state_id[row])}_{row}_{outcome}.mp4",
                        batch.videos[row, :end].numpy(), caption=captions)

    def step(self) -> dict[str, float]:
        """One iteration: learn, evaluate when due, log, checkpoint when due."""
        cfg = self.cfg
        start = time.perf_counter()
        refreshed = self.coevolution is not None and self.coevolution.pending(self.iteration)
        refresh = self._refresh() if refreshed else {}
        metrics = {**self.learn(), **refresh}
        if self.coevolution is not None:
            metrics["coevolve/real_trajectories"] = float(self.coevolution.real_trajectories)
        self.iteration += 1
        last = self.iteration == cfg.iterations
        if cfg.test_freq and (self.iteration % cfg.test_freq == 0 or last):
            metrics.update(self.evaluate())
        if self.device.type == "cuda" and isinstance(self.backend, LocalBackend):
            metrics["perf/peak_memory_gib"] = torch.cuda.max_memory_allocated(self.device) / 1024**3
        metrics.update(time_shares(metrics, time.perf_counter() - start))
        self.logger.write(self.iteration, metrics)
        # Saving right after a refresh keeps the world-model run at most one round ahead of the newest checkpoint.
        if self._saves_now() or refreshed:
            self.save()
        return metrics

    def _refresh(self) -> dict[str, float]:
        """Co-evolution: real trajectories of the current policy, world-model fine-tuning, imagination reloaded."""
        metrics = self.coevolution.refresh(self.backend.sample, self.task.prompt)
        self.backend.reload_world_model(self.coevolution.weights)
        return metrics

    def learn(self) -> dict[str, float]:
        """Rollouts, GRPO advantages and the policy update of one iteration."""
        cfg = self.cfg
        batch, metrics = self.generate()
        if batch is None:
            log.warning("no informative group found in %d rounds; skipping the update", cfg.max_generation_rounds)
        else:
            width = batch.responses.shape[1] * batch.responses.shape[2]
            scores = token_level_rewards(batch.complete, batch.finish_step, width).sum(dim=1)
            batch.advantages = grpo_advantages(scores, batch.group)
            start = time.perf_counter()
            metrics.update(self.backend.update(batch))
            metrics["time/update_s"] = time.perf_counter() - start
            metrics["actor/lr"] = cfg.lr
        return metrics

    def save(self) -> Path:
        trainer_state = {"buffer": self.buffer.state_dict(), "next_group": self.next_group}
        write = self.backend.save
        if self.coevolution is not None:
            trainer_state["coevolve"] = self.coevolution.state_dict()

            def write(folder: Path) -> None:
                self.backend.save(folder)
                self.coevolution.save(folder)

        self.last_saved = save_checkpoint(self.output, self.iteration, write, trainer_state, self.cfg.keep_last)
        return self.last_saved

    def _saves_now(self) -> bool:
        """Whether ``step`` checkpoints the iteration it just finished."""
        return self.iteration % self.cfg.save_freq == 0 or self.iteration == self.cfg.iterations

    def _stop(self, signal_name: str) -> None:
        saved = checkpoint_path(self.output, self.iteration) if self._saves_now() else self.save()
        raise Interrupted(f"stopped by {signal_name} after iteration {self.iteration}; checkpoint {saved}; rerun the "
                          "same command to continue")

    def evaluate(self, folder: Path | None = None) -> dict[str, float]:
        """Greedy real-simulator evaluation; results and videos go to ``folder`` (default: the iteration's videos)."""
        from wmpo.rollout.evaluation import evaluate_policy

        start = time.perf_counter()
        ecfg = self.cfg.evaluation
        folder = folder or self.output / "videos" / f"iteration_{self.iteration:06d}"
        with cpu_threads(1, enabled=self.device.type == "cpu"):
            result = evaluate_policy(self.backend.predict, self.task, self.eval_states, ecfg.states, ecfg.workers,
                                     ecfg.backend, folder, ecfg.videos, runner=getattr(self, "sim_runner", None),
                                     keep_episodes=self.monitoring)
        log.info("real evaluation: success rate %.3f over %d episodes (%s)", result["success_rate"],
                 len(result["episodes"]), folder / "eval_results.json")
        metrics = {"eval/success_rate": result["success_rate"], "time/eval_s": time.perf_counter() - start}
        if self.monitoring:
            start = time.perf_counter()
            metrics.update(self.backend.monitor(self.eval_first_frames, result["results"], folder / "open_loop.png"))
            metrics["time/fidelity_s"] = time.perf_counter() - start
            log.info("fidelity: imagined success %.3f vs real %.3f, agreement %.3f; reward model on the real videos: "
                     "precision %.3f, recall %.3f", metrics["fidelity/imagined_success"],
                     metrics["fidelity/real_success"], metrics["fidelity/agreement"], metrics["fidelity/rm_precision"],
                     metrics["fidelity/rm_recall"])
        return metrics

    def fit(self) -> None:
        try:
            if self.cfg.val_only:
                self.evaluate(self.output / "val_only" / f"iteration_{self.iteration:06d}")
                return
            if self.iteration >= self.cfg.iterations:
                log.info("%s: run complete at iteration %d (iterations=%d)", self.output, self.iteration,
                         self.cfg.iterations)
            with StopOnSignal() as stop:
                while self.iteration < self.cfg.iterations:
                    self.step()
                    if stop.requested:
                        self._stop(stop.requested)
        finally:
            if self.logger is not None:
                self.logger.close()
            self.backend.close()
            if getattr(self, "sim_runner", None) is not None:
                self.sim_runner.close()
