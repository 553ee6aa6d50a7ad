"""The whole WMPO recipe at a size a laptop CPU trains, measured on held-out initial states of the real simulator.

    python -m wmpo.experiments.small_scale seed=0 output=outputs/small_scale/seed0

Stages (each skipped when a rerun finds it complete; the long ones also resume inside):
  states        three disjoint initial-state sets: demonstrations, training (budget + RL), held-out evaluation
  demos         scripted-expert demonstrations (the successful ones are kept), recorded record_after_success steps
                past their success
  sft           a deliberately weak base policy: few demonstrations, few steps
  budget        P real trajectories of the base policy at the rollout temperature (recorded the same way)
  world_model   the linear patch autoencoder fitted to the budget's and the demonstrations' frames, then the world
                model trained from scratch on them; open-loop replay of the held-out budget episodes
  reward_model  the success classifier, trained on the budget, the demonstrations and (rm_replays) the world
                model's replays of the budget episodes labelled with their real outcomes; threshold chosen on the
                held-out budget episodes' videos; the world model replays those episodes' own actions and the
                classifier judges them against the simulator's outcomes, which sets the threshold imagination uses
                (imagination_threshold=replays)
  wmpo          WMPO from the base policy in the learned world model (real evaluations on held-out states)
  wmpo_coevolve WMPO whose world model co-evolves: every coevolve_every iterations the policy collects
                coevolve_trajectories real trajectories and the world model trains coevolve_wm_steps more steps on
                all real data so far (its real budget counts them)
  grpo_sim      GRPO from the base policy in the real simulator with the same P real trajectories
  dpo           offline trajectory DPO from the base policy on the P budget trajectories (success/failure pairs)
  evaluation    greedy real evaluation of base, WMPO and the baselines on the held-out states; world-model and
                reward-model fidelity; results.json, report.md, success.png (rerun when an arm is missing from it)
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from opensora.errors import reports_errors
from wmpo.cli import parse_config

log = logging.getLogger("wmpo.small_scale")
ROOT = Path(__file__).resolve().parents[2]
TRAINED_ARMS = ("wmpo", "wmpo_coevolve", "grpo_sim", "dpo")
"""The arms trained from the base policy; each has the stage of its name."""


@dataclass
class SmallScaleConfig:
    seed: int = 0
    """Seed of every stage (states, demonstrations, models, rollouts)."""
    output: str = "outputs/small_scale/seed0"
    """Run directory."""
    task: str = "lift"
    """Built-in task with a scripted expert."""
    workers: int = 2
    """Simulator processes."""
    demos: int = 120
    """Scripted-expert episodes attempted for the base policy's demonstrations."""
    expert_noise: float = 0.1
    """Std of the Gaussian noise on the expert's translation actions."""
    record_after_success: int = 16
    """Steps the demonstrations and the budget episodes go on after their first success (within the horizon): without
    them the world model never sees the task once it succeeded (a cube above the table) and cannot imagine it.
    Success, its step and the reward model's labels stay those of the first success."""
    sft_steps: int = 1200
    """SFT optimizer steps of the base policy."""
    sft_batch_size: int = 32
    """SFT examples per step."""
    sft_lr: float = 1e-3
    """SFT learning rate."""
    sft_decay: str = "cosine"
    """SFT learning-rate schedule after warmup: constant or cosine."""
    budget: int = 128
    """P: real trajectories of the base policy for the world model (and the baseline's real budget)."""
    temperature: float = 0.5
    """Sampling temperature of the budget, WMPO and the baseline (and of their PPO ratios)."""
    wm_steps: int = 7200
    """World-model optimizer steps."""
    rm_steps: int = 600
    """Reward-model optimizer steps."""
    rm_heldout: int = 24
    """Budget episodes held out from reward-model training to choose its threshold."""
    rm_replays: bool = False
    """Train the reward model also on the world model's replays of the training budget episodes (their executed
    actions imagined from their first frames), labelled with the simulator's outcomes: the classifier then learns to
    judge the imagined videos it decides on in WMPO, not only real ones."""
    imagination_threshold: str = "replays"
    """Where the reward-model threshold used in imagination is chosen: ``replays`` (the world model replays the
    held-out budget episodes' actions; the best balanced accuracy against their real outcomes, or the real-video
    threshold when none beats chance) or ``real`` (the held-out episodes' real videos, as the classifier is
    trained)."""
    wmpo_iterations: int = 16
    """WMPO policy updates."""
    groups: int = 4
    """Initial states per update (WMPO and baseline)."""
    n_samples: int = 8
    """Trajectories per initial state."""
    lr: float = 1e-4
    """Policy learning rate of WMPO and the baseline."""
    eval_episodes: int = 200
    """Held-out initial states of the final greedy evaluation (one episode each)."""
    coevolve_every: int = 4
    """WMPO iterations between world-model refreshes of the co-evolving arm."""
    coevolve_trajectories: int = 32
    """Real trajectories the co-evolving arm's policy collects per refresh."""
    coevolve_wm_steps: int = 300
    """World-model steps per refresh (over the budget, the demonstrations and every round collected so far)."""
    dpo_iterations: int = 16
    """DPO policy updates (one optimizer step of ``dpo_pairs`` pairs each)."""
    dpo_pairs: int = 8
    """Preference pairs per DPO update."""
    dpo_beta: float = 0.1
    """DPO's β."""
    curve_every: int = 4
    """WMPO iterations between real evaluations for the success curve."""
    curve_episodes: int = 50
    """Held-out states per curve point (the first ones of the evaluation set)."""
    arms: list[str] = field(default_factory=lambda: list(TRAINED_ARMS))
    """Arms trained and evaluated besides the base policy (each arm's result does not depend on the others; a rerun
    with more arms adds them)."""
    until: str = ""
    """Stop after this stage (empty: run all stages)."""


STAGES = ("states", "demos", "sft", "budget", "world_model", "reward_model", "wmpo", "wmpo_coevolve", "grpo_sim", "dpo",
          "evaluation")
ARMS = ("base", *TRAINED_ARMS)


class Experiment:
    def __init__(self, cfg: SmallScaleConfig) -> None:
        from wmpo.tasks import get_task

        if cfg.until and cfg.until not in STAGES:
            raise SystemExit(f"error: until={cfg.until!r} is not a stage; stages: {', '.join(STAGES)}")
        unknown = [arm for arm in cfg.arms if arm not in TRAINED_ARMS]
        if unknown:
            raise SystemExit(f"error: arms={cfg.arms}: unknown {unknown}; arms: {', '.join(TRAINED_ARMS)}")
        if cfg.imagination_threshold not in ("replays", "real"):
            raise SystemExit(f"error: imagination_threshold={cfg.imagination_threshold!r}: expected replays or real")
        self.cfg = cfg
        self.task = get_task(cfg.task)
        self.out = Path(cfg.output).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.record_path = self.out / "stages.json"
        self.records = json.loads(self.record_path.read_text()) if self.record_path.is_file() else {}
        settings = self.out / "settings.json"
        recorded = _settings(cfg)
        if settings.is_file() and not _same_settings(json.loads(settings.read_text()), recorded):
            raise SystemExit(f"error: {settings} holds other settings; use a new output folder or the same settings")
        settings.write_text(json.dumps(recorded, indent=2) + "\n")

    def arms(self) -> list[str]:
        """The evaluated arms, in the stages' order."""
        return ["base", *(arm for arm in TRAINED_ARMS if arm in self.cfg.arms)]

    def _stale(self, name: str) -> bool:
        """A completed evaluation that lacks an arm (a run from before the arm existed, or with fewer arms) is run
        again."""
        return name == "evaluation" and any(arm not in self.records[name] for arm in self.arms())

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def run(self) -> None:
        for number, name in enumerate(STAGES, start=1):
            if name in self.records and not self._stale(name):
                log.info("[%d/%d] %s: done earlier (%.0f s)", number, len(STAGES), name, self.records[name]["seconds"])
                continue
            if name in TRAINED_ARMS and name not in self.cfg.arms:
                log.info("[%d/%d] %s: not among arms=%s", number, len(STAGES), name, self.cfg.arms)
                continue
            log.info("[%d/%d] %s ...", number, len(STAGES), name)
            start = time.perf_counter()
            summary = getattr(self, f"stage_{name}")()
            seconds = time.perf_counter() - start
            self.records[name] = {"seconds": seconds, **summary}
            self.record_path.write_text(json.dumps(self.records, indent=2) + "\n")
            shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in summary.items())
            log.info("[%d/%d] %s: %.0f s%s", number, len(STAGES), name, seconds, f" ({shown})" if shown else "")
            if name == self.cfg.until:
                log.info("stopped after %s (until=%s)", name, name)
                return
        log.info("results: %s", self.path("results.json"))

    # -- stages ---------------------------------------------------------------------------------------------------

    def stage_states(self) -> dict:
        from wmpo.envs.initial_states import save_initial_states
        from wmpo.envs.vector import VectorRunner

        cfg = self.cfg
        sets = {"demos": cfg.demos, "train": cfg.budget, "eval": cfg.eval_episodes}
        flats = {}
        # Sampled in the simulator processes: no rendering context in this one, which later imports the models.
        runner = VectorRunner(self.task, backend="builtin", num_workers=cfg.workers)
        try:
            for number, (name, count) in enumerate(sets.items()):
                set_seed = int(np.random.SeedSequence([cfg.seed, number]).generate_state(1)[0])
                states, frames = runner.sample_initial_states(count, set_seed)
                save_initial_states(self.path("states", name), self.task.name, "builtin", set_seed, states, frames)
                flats[name] = {np.asarray(s["states"]).tobytes() for s in states}
        finally:
            runner.close()
        overlap = (flats["eval"] & (flats["demos"] | flats["train"])) | (flats["demos"] & flats["train"])
        if overlap:
            raise RuntimeError(f"{len(overlap)} initial states appear in two sets; choose another seed")
        return {name: count for name, count in sets.items()}

    def stage_demos(self) -> dict:
        from opensora.datasets.shards import write_shards
        from wmpo.rollout.collection import episode_record
        from wmpo.envs.initial_states import load_initial_states
        from wmpo.envs.vector import VectorRunner

        states = load_initial_states(self.path("states", "demos"), task=self.task.name, with_frames=False)
        runner = VectorRunner(self.task, backend="builtin", num_workers=self.cfg.workers, scripted_expert=True,
                              expert_noise=self.cfg.expert_noise, expert_seed=self.cfg.seed,
                              after_success=self.cfg.record_after_success)
        try:
            results = runner.run(states.states, None)
        finally:
            runner.close()
        kept = [episode_record(r, f"demo_s{r.state_id:05d}") for r in results if r.success]
        if len(kept) < 3:
            raise RuntimeError(f"only {len(kept)} of {len(results)} expert demonstrations succeeded")
        write_shards(kept, self.path("demos"))
        return {"attempted": len(results), "kept": len(kept)}

    def stage_sft(self) -> dict:
        from wmpo.policy.sft import SFTConfig, train

        cfg = self.cfg
        metrics = train(SFTConfig(
            shards=[str(self.path("demos"))], val_episodes=2, task=self.task.name, preset="small",
            output=str(self.path("sft")), steps=cfg.sft_steps, batch_size=cfg.sft_batch_size, lr=cfg.sft_lr,
            decay=cfg.sft_decay, val_every=0, ckpt_every=max(1, cfg.sft_steps // 2), seed=cfg.seed, device="cpu"))
        return {k.removeprefix("val/"): v for k, v in metrics.items() if k.startswith("val/")}

    def _policy(self, path: Path):
        from wmpo.policy import load_policy

        return load_policy(path, self.task.unnorm_key)

    def stage_budget(self) -> dict:
        from opensora.datasets.shards import write_shards
        from wmpo.rollout.collection import collect_rollouts
        from wmpo.envs.initial_states import load_initial_states
        from wmpo.envs.vector import VectorRunner
        from wmpo.threads import cpu_threads

        cfg = self.cfg
        policy = self._policy(self.path("sft", "policy"))
        states = load_initial_states(self.path("states", "train"), task=self.task.name, with_frames=False)
        runner = VectorRunner(self.task, backend="builtin", num_workers=cfg.workers,
                              after_success=cfg.record_after_success)
        try:
            with cpu_threads(1):
                episodes = collect_rollouts(policy, runner, states.states, 1, cfg.temperature, cfg.seed)
        finally:
            runner.close()
        split = len(episodes) - cfg.rm_heldout
        write_shards(episodes[:split], self.path("budget", "main"))
        write_shards(episodes[split:], self.path("budget", "heldout"))
        return {"episodes": len(episodes), "success_rate": float(np.mean([e.meta["complete"] for e in episodes]))}

    def stage_world_model(self) -> dict:
        from opensora.train import train
        from opensora.training.config import load_config

        cfg = self.cfg
        # The held-out budget episodes stay unseen by both learned models: they measure them.
        shards = [self.path("budget", "main"), self.path("demos")]
        overrides = [f"data.shards=[{','.join(map(str, shards))}]",
                     f"data.stats={self.path('sft', 'policy', 'dataset_statistics.json')}",
                     f"output={self.path('world_model')}", f"max_steps={cfg.wm_steps}", f"seed={cfg.seed}",
                     f"model.vae_path={self.autoencoder_path()}"]
        wm_cfg = load_config(ROOT / "configs" / "world_model" / "small_scale.yaml", overrides)
        fit = self._fit_autoencoder(shards, wm_cfg.model.preset)
        log.info("linear patch autoencoder: %d frames, %.4f of the variance kept", fit["frames"],
                 fit["explained_variance"])
        metrics = train(wm_cfg)
        replay = self._replay(wm_cfg.val_sampling_steps)
        (self.path("world_model", "open_loop.json")).write_text(json.dumps(replay, indent=2) + "\n")
        log.info("open-loop replay of %d held-out budget episodes: PSNR per chunk %s (repeating the first frame: %s)",
                 replay["episodes"], _rounded(replay["psnr_per_chunk"]), _rounded(replay["copy_first_psnr_per_chunk"]))
        if replay["psnr"] <= replay["copy_first_psnr"]:
            log.warning("the world model imagines the held-out episodes worse than repeating their first frame "
                        "(%.2f dB vs %.2f dB): WMPO will learn from a poor simulator", replay["psnr"],
                        replay["copy_first_psnr"])
        return {**{k: v for k, v in metrics.items() if k in ("loss", "val/psnr", "val/psnr_copy")},
                "open_loop_psnr": replay["psnr"], "open_loop_copy_first_psnr": replay["copy_first_psnr"]}

    def autoencoder_path(self) -> Path:
        return self.path("world_model", "autoencoder")

    def _fit_autoencoder(self, shards: list[Path], model_preset: str) -> dict:
        from opensora.datasets.shards import index_episodes
        from opensora.models.patch_autoencoder import LinearPatchVAE
        from opensora.models.stdit3 import preset

        arch = preset(model_preset)
        refs = index_episodes([str(s) for s in shards])
        vae, summary = LinearPatchVAE.fit_episodes(refs, arch.vae_downsample, arch.in_channels)
        vae.save(self.autoencoder_path(), **summary)
        return summary

    def _replay(self, sampling_steps: int) -> dict:
        from opensora.datasets.shards import index_episodes
        from wmpo.fidelity import replay_open_loop

        q01, q99 = self._action_bounds()
        episodes = index_episodes([str(self.path("budget", "heldout"))])
        return replay_open_loop(self._world_model(sampling_steps), episodes, q01, q99, self.cfg.seed,
                                self.path("world_model", "open_loop.png"))

    def _action_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """q01/q99 of the base policy's action statistics (the world model's action normalization)."""
        from opensora.datasets.windows import load_action_bounds

        return load_action_bounds(self.path("sft", "policy", "dataset_statistics.json"))

    def _world_model(self, sampling_steps: int | None = None):
        """The trained world model as imagination builds it (``sampling_steps``: instead of imagination's)."""
        import torch

        from opensora.world_model import WorldModel

        spec = self._trainer_config(self.path("fidelity"), {}).imagination.world_model
        spec.model_path = str(self.world_model_weights())
        if sampling_steps is not None:
            spec.num_sampling_steps = sampling_steps
        return WorldModel.build(spec, device="cpu", dtype=torch.float32)

    def world_model_weights(self) -> Path:
        from opensora.training.checkpointing import latest_checkpoint

        latest = latest_checkpoint(self.path("world_model"))
        if latest is None:
            raise RuntimeError(f"no world-model checkpoint in {self.path('world_model')}")
        return latest / "ema.safetensors"

    def stage_reward_model(self) -> dict:
        cfg = self.cfg
        shards = [self.path("budget", "main"), self.path("demos")]
        if cfg.rm_replays:
            shards.append(self._write_replays())
        command = [sys.executable, str(ROOT / "scripts" / "train_reward_model.py"),
                   f"shards=[{','.join(map(str, shards))}]",
                   f"val_shards=[{self.path('budget', 'heldout')}]", "preset=small",
                   f"output={self.path('reward_model')}", f"steps={cfg.rm_steps}", "episodes_per_step=8",
                   "lr=3e-4", f"eval_every={max(1, cfg.rm_steps // 8)}", f"seed={cfg.seed}"]
        self._subprocess(command, "reward_model")
        best = json.loads(self.path("reward_model", "threshold.json").read_text())
        replay = self._replay_outcomes(best["threshold"])
        self.path("reward_model", "replay_outcomes.json").write_text(json.dumps(replay, indent=2) + "\n")
        log.info("world model + reward model replaying the %d held-out budget episodes' own actions: imagined success "
                 "%.2f vs real %.2f, agreement %.2f at threshold %.3f (%.2f at the real-video threshold %.3f)",
                 replay["states"], replay["imagined_success_rate"], replay["real_success_rate"], replay["agreement"],
                 replay["threshold"], replay["at_real_video_threshold"]["agreement"], best["threshold"])
        return {**{k: best[k] for k in ("threshold", "precision", "recall", "f1")},
                "imagination_threshold": replay["threshold"], "replay_agreement": replay["agreement"],
                "replay_imagined_success": replay["imagined_success_rate"]}

    def _write_replays(self) -> Path:
        """The world model's replays of the training budget episodes as shards (written once; a rerun reuses them)."""
        from opensora.datasets.shards import index_episodes, write_shards
        from wmpo.fidelity import replayed_episodes

        target = self.path("reward_model", "replays")
        if target.is_dir():
            return target
        q01, q99 = self._action_bounds()
        episodes = index_episodes([str(self.path("budget", "main"))])
        start = time.perf_counter()
        replays = replayed_episodes(self._world_model(), episodes, q01, q99, self.cfg.seed + 1)
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_shards(replays, partial)
        partial.rename(target)
        log.info("world-model replays of %d training budget episodes for the reward model: %.0f s", len(replays),
                 time.perf_counter() - start)
        return target

    def _imagined_env(self, threshold: float):
        import torch

        from wmpo.imagination import build_imagined_env

        trainer_cfg = self._trainer_config(self.path("fidelity"), {
            "imagination.world_model.model_path": self.world_model_weights(),
            "imagination.reward_model_path": self.path("reward_model", "reward_model.pth"),
            "imagination.rm_threshold": threshold, "imagination.max_steps": self.task.max_steps})
        return build_imagined_env(trainer_cfg, self.task, torch.device("cpu")), trainer_cfg

    def _replay_outcomes(self, real_video_threshold: float) -> dict:
        from opensora.datasets.shards import index_episodes
        from wmpo.fidelity import agreement, balanced_threshold, replay_scores

        env, _ = self._imagined_env(real_video_threshold)
        q01, q99 = self._action_bounds()
        episodes = index_episodes([str(self.path("budget", "heldout"))])
        scores, real = replay_scores(env, episodes, q01, q99, self.cfg.seed)
        threshold = real_video_threshold
        if self.cfg.imagination_threshold == "replays":
            threshold = balanced_threshold(scores, real, real_video_threshold)
        return {**agreement(scores >= threshold, real), "threshold": threshold,
                "chosen_on": self.cfg.imagination_threshold,
                "at_real_video_threshold": agreement(scores >= real_video_threshold, real),
                "scores": [round(float(v), 4) for v in scores], "real": real.tolist()}

    def imagined_threshold(self) -> float:
        """The reward-model threshold imagination decides with (chosen in the reward_model stage)."""
        return json.loads(self.path("reward_model", "replay_outcomes.json").read_text())["threshold"]

    def _subprocess(self, command: list[str], name: str) -> None:
        logfile = self.path("logs", f"{name}.log")
        logfile.parent.mkdir(parents=True, exist_ok=True)
        with open(logfile, "a") as handle:
            code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT)
        if code != 0:
            raise RuntimeError(f"{name} failed (exit {code}); see {logfile}")

    def _trainer_config(self, output: Path, overrides: dict):
        from wmpo.trainer_config import load_trainer_config

        cfg = self.cfg
        settings = {"task": self.task.name, "seed": cfg.seed, "policy_path": self.path("sft", "policy"),
                    "initial_states": self.path("states", "train"), "output": output,
                    "evaluation.initial_states": self.path("states", "eval"), "train_batch_size": cfg.groups,
                    "rollout_batch_size": cfg.groups, "n_samples": cfg.n_samples, "temperature": cfg.temperature,
                    "update.temperature": cfg.temperature, "lr": cfg.lr, "evaluation.states": cfg.curve_episodes,
                    "evaluation.workers": cfg.workers,
                    "imagination.world_model.vae_path": self.autoencoder_path(), **overrides}
        return load_trainer_config(ROOT / "configs" / "small_scale.yaml", [f"{k}={v}" for k, v in settings.items()])

    def stage_wmpo(self) -> dict:
        return self._wmpo("wmpo", {})

    def stage_wmpo_coevolve(self) -> dict:
        cfg = self.cfg
        summary = self._wmpo("wmpo_coevolve", {
            "coevolve.every": cfg.coevolve_every, "coevolve.trajectories": cfg.coevolve_trajectories,
            "coevolve.wm_steps": cfg.coevolve_wm_steps, "coevolve.world_model_run": self.path("world_model")})
        rows = _metrics(self.path("wmpo_coevolve"))
        collected = int(rows[-1]["coevolve/real_trajectories"])
        return {**summary, "rounds": int(max(row.get("coevolve/round", 0) for row in rows)),
                "real_trajectories": self.records["budget"]["episodes"] + collected}

    def _wmpo(self, name: str, overrides: dict) -> dict:
        from wmpo.trainer import Trainer

        cfg = self.cfg
        trainer_cfg = self._trainer_config(self.path(name), {
            "iterations": cfg.wmpo_iterations, "test_freq": cfg.curve_every, "save_freq": cfg.curve_every,
            "imagination.world_model.model_path": self.world_model_weights(),
            "imagination.reward_model_path": self.path("reward_model", "reward_model.pth"),
            "imagination.rm_threshold": self.imagined_threshold(), "imagination.max_steps": self.task.max_steps,
            **overrides})
        Trainer(trainer_cfg).fit()
        rows = _metrics(self.path(name))
        return {"imagined_success_first": rows[0].get("rollout/success", float("nan")),
                "imagined_success_last": rows[-1].get("rollout/success", float("nan"))}

    def stage_grpo_sim(self) -> dict:
        from wmpo.trainer import Trainer

        cfg = self.cfg
        per_iteration = cfg.groups * cfg.n_samples
        if cfg.budget % per_iteration:
            raise SystemExit(f"error: budget={cfg.budget} is not a multiple of groups x n_samples = {per_iteration}")
        iterations = cfg.budget // per_iteration
        trainer_cfg = self._trainer_config(self.path("grpo_sim"), {
            "imagination.enable": False, "iterations": iterations, "max_generation_rounds": 1, "test_freq": 0,
            "save_freq": iterations})
        Trainer(trainer_cfg).fit()
        used = int(sum(row.get("rollout/trajectories", 0) for row in _metrics(self.path("grpo_sim"))))
        return {"iterations": iterations, "real_trajectories": used}

    def stage_dpo(self) -> dict:
        from opensora.datasets.shards import index_episodes
        from wmpo.dpo_trainer import DPOTrainer

        cfg = self.cfg
        used = self.records["budget"]["episodes"]
        outcomes = [bool(e.meta["complete"]) for e in index_episodes([str(self.path("budget"))])]
        if all(outcomes) or not any(outcomes):
            # No preference pair exists: DPO leaves the base policy as it is.
            log.warning("the budget's %d episodes all %s: no preference pair; the dpo arm is the base policy",
                        len(outcomes), "succeeded" if all(outcomes) else "failed")
            return {"iterations": 0, "pairs": 0, "real_trajectories": used}
        trainer_cfg = self._trainer_config(self.path("dpo"), {
            "algorithm": "dpo", "dpo.shards": f"[{self.path('budget', 'main')},{self.path('budget', 'heldout')}]",
            "dpo.beta": cfg.dpo_beta, "iterations": cfg.dpo_iterations, "train_batch_size": cfg.dpo_pairs,
            "update.ppo_mini_batch_size": cfg.dpo_pairs, "test_freq": 0, "save_freq": cfg.dpo_iterations})
        DPOTrainer(trainer_cfg).fit()
        rows = _metrics(self.path("dpo"))
        return {"iterations": cfg.dpo_iterations, "pairs": rows[-1]["dpo/pairs"], "real_trajectories": used,
                "preference_accuracy_last": rows[-1]["dpo/preference_accuracy"],
                "reward_margin_last": rows[-1]["dpo/reward_margin"]}

    def stage_evaluation(self) -> dict:
        from wmpo.trainer_checkpoint import latest_checkpoint
        from wmpo.envs.initial_states import load_initial_states
        from wmpo.envs.vector import VectorRunner
        from wmpo.rollout.evaluation import evaluate_policy
        from wmpo.experiments.report import arm_result, plot_success, write_report
        from wmpo.threads import cpu_threads

        cfg = self.cfg
        states = load_initial_states(self.path("states", "eval"), task=self.task.name)
        arms, real_used = {}, {"base": 0, "wmpo": self.records["budget"]["episodes"]}
        for arm in self.arms():
            if arm == "base" or (arm == "dpo" and not self.records["dpo"]["pairs"]):
                arms[arm] = self.path("sft", "policy")
            else:
                arms[arm] = latest_checkpoint(self.path(arm)) / "actor"
            if arm not in real_used:
                real_used[arm] = self.records[arm]["real_trajectories"]
        runner = VectorRunner(self.task, backend="builtin", num_workers=cfg.workers, record_frames=False)
        outcomes = {}
        try:
            for arm, path in arms.items():
                saved = self.path("evaluation", arm, "eval_results.json")
                if saved.is_file() and len(episodes := json.loads(saved.read_text())["episodes"]) == cfg.eval_episodes:
                    outcomes[arm] = [ep["success"] for ep in episodes]  # evaluated before an interruption
                    log.info("%s: real success %.3f (evaluated earlier)", arm, np.mean(outcomes[arm]))
                    continue
                policy = self._policy(path)

                def predict(frames, instructions, policy=policy):
                    return policy.predict(frames, instructions, do_sample=False).actions

                with cpu_threads(1):
                    result = evaluate_policy(predict, self.task, states, cfg.eval_episodes, cfg.workers, "builtin",
                                             self.path("evaluation", arm), videos=0, runner=runner)
                outcomes[arm] = [ep["success"] for ep in result["episodes"]]
                log.info("%s: real success %.3f on %d held-out states", arm, np.mean(outcomes[arm]), len(outcomes[arm]))
        finally:
            runner.close()
        results = {"arms": {arm: arm_result(outcomes[arm], real_used[arm]) for arm in arms}}
        results["world_model_agreement"] = self._agreement(states, outcomes["base"])
        results["world_model_open_loop"] = json.loads(self.path("world_model", "open_loop.json").read_text())
        results["world_model_replay_outcomes"] = json.loads(
            self.path("reward_model", "replay_outcomes.json").read_text())
        best = json.loads(self.path("reward_model", "threshold.json").read_text())
        results["reward_model"] = {k: best[k] for k in ("threshold", "precision", "recall", "f1")}
        results["reward_model"]["heldout_episodes"] = cfg.rm_heldout
        results["reward_model"]["imagination_threshold"] = self.imagined_threshold()
        results["stage_seconds"] = {name: round(rec["seconds"], 1) for name, rec in self.records.items()}
        results["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
        results["seed"] = cfg.seed
        labels = {"wmpo": "WMPO (real success)", "wmpo_coevolve": "WMPO, co-evolving world model"}
        curves = {}
        for run, label in labels.items():
            if run in arms:
                results[f"{run}_curve"] = curves[label] = self._curve(run, outcomes["base"])
        (self.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        write_report(self.out, results, _settings(cfg))
        plot_success(self.out / "success.png", curves, results["arms"])
        return {arm: results["arms"][arm]["success_rate"] for arm in arms}

    def _curve(self, run: str, base: list[bool]) -> list[dict]:
        """Real greedy success on the first ``curve_episodes`` evaluation states: base, then each evaluation of
        ``run``."""
        from wmpo.experiments.report import wilson_interval

        episodes = self.cfg.curve_episodes
        curve = [{"iteration": 0, "success_rate": float(np.mean(base[:episodes])), "episodes": min(episodes, len(base))}]
        curve += [{"iteration": row["iteration"], "success_rate": row["eval/success_rate"], "episodes": episodes}
                  for row in _metrics(self.path(run)) if "eval/success_rate" in row]
        for point in curve:
            point["ci95"] = list(wilson_interval(round(point["success_rate"] * point["episodes"]), point["episodes"]))
        return curve

    def _agreement(self, states, real: list[bool]) -> dict:
        import torch

        from wmpo.fidelity import agreement, imagine_greedy

        env, trainer_cfg = self._imagined_env(self.imagined_threshold())
        policy = self._policy(self.path("sft", "policy"))
        count = len(real)
        imagined = imagine_greedy(policy, env, torch.from_numpy(states.frames[:count]), self.task.prompt, self.cfg.seed,
                                  jpeg_resize=trainer_cfg.imagination.jpeg_resize)
        return agreement(imagined, np.asarray(real))


def _rounded(values: list[float]) -> list[float]:
    return [round(v, 2) for v in values]


def _settings(cfg: SmallScaleConfig) -> dict:
    """The settings that define the run's results (where to stop and which arms to run are not among them)."""
    settings = asdict(cfg)
    settings.pop("until")
    settings.pop("arms")
    return settings


def _same_settings(recorded: dict, current: dict) -> bool:
    """Equal, where a setting the recorded run predates counts as its default (which that run used)."""
    defaults = asdict(SmallScaleConfig())
    known = set(recorded) <= set(current)
    return known and all(recorded.get(key, defaults[key]) == value for key, value in current.items())


def _metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


@reports_errors
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    cfg = parse_config(SmallScaleConfig, argv, doc=__doc__)
    Experiment(cfg).run()


if __name__ == "__main__":
    main()
