"""Policy–world-model co-evolution: every ``coevolve.every`` WMPO iterations the current policy collects real
trajectories, the world model is fine-tuned on all real data so far, and imagination continues in the refreshed
model.

The world model's fine-tuning continues its own training run (``coevolve.world_model_run``): its newest checkpoint,
optimizer and EMA included, is the start of a run under ``<output>/coevolve/world_model`` that each refresh extends
by ``coevolve.wm_steps`` steps over the source run's shards plus every round collected so far. The collected rounds
live under ``<output>/coevolve/round_NNN``; a round that is complete on disk is reused, so a rerun after a crash
repeats nothing it already has.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from opensora.datasets.shards import write_shards
from opensora.training.checkpointing import latest_checkpoint
from opensora.training.config import load_config
from wmpo.rollout.collection import episode_record
from wmpo.rollout.simulated import chunk_seed

log = logging.getLogger("wmpo")

WEIGHTS = "world_model.safetensors"
"""The refreshed world model's EMA weights inside a trainer checkpoint (absent before the first refresh)."""


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


class Coevolution:
    """The refresh schedule of one WMPO run and what it has done (rounds, real trajectories collected)."""

    def __init__(self, cfg, task, states, output: Path) -> None:
        self.cfg, self.task, self.states = cfg.coevolve, task, states
        # The simulator the trainer evaluates and simulates in.
        self.seed, self.backend = cfg.seed, cfg.evaluation.backend or states.backend
        self.workers = cfg.evaluation.workers
        self.root = output / "coevolve"
        self.source = Path(self.cfg.world_model_run)
        self.rounds, self.real_trajectories = 0, 0
        self.weights: Path | None = None
        """EMA weights of the newest refreshed world model (None before the first refresh)."""

    def pending(self, iteration: int) -> bool:
        """Whether a refresh is due after ``iteration`` completed iterations (also one a crash left undone)."""
        return self.rounds < iteration // self.cfg.every

    def state_dict(self) -> dict:
        return {"rounds": self.rounds, "real_trajectories": self.real_trajectories}

    def load(self, state: dict, checkpoint: Path) -> Path | None:
        """Restore the counters of a trainer checkpoint; returns the world-model weights it holds, if any."""
        self.rounds, self.real_trajectories = state["rounds"], state["real_trajectories"]
        self.weights = checkpoint / WEIGHTS if self.rounds else None
        return self.weights

    def save(self, folder: Path) -> None:
        if self.weights is not None:
            _link_or_copy(self.weights, folder / WEIGHTS)

    def refresh(self, sample, prompt: str) -> dict[str, float]:
        """One round: collect, fine-tune; returns its metrics (``self.weights`` then names the new world model).

        ``sample(frames, instructions, seeds)`` queries the current policy at the rollout temperature.
        """
        number = self.rounds + 1
        start = time.perf_counter()
        folder, success = self._collect(number, sample, prompt)
        collected = time.perf_counter() - start
        self.weights, loss = self._fine_tune(number)
        self.rounds, self.real_trajectories = number, self.real_trajectories + self.cfg.trajectories
        log.info("co-evolution round %d: %d real trajectories (success %.3f) in %s, world model fine-tuned to %s",
                 number, self.cfg.trajectories, success, folder, self.weights.parent)
        return {"coevolve/round": float(number), "coevolve/real_trajectories": float(self.real_trajectories),
                "coevolve/collected_success": success, "coevolve/wm_loss": loss,
                "time/coevolve_collect_s": collected, "time/coevolve_s": time.perf_counter() - start}

    # -- collection -------------------------------------------------------------------------------------------------

    def _round_folder(self, number: int) -> Path:
        return self.root / f"round_{number:03d}"

    def _collect(self, number: int, sample, prompt: str) -> tuple[Path, float]:
        from wmpo.envs.vector import VectorRunner
        from wmpo.threads import cpu_threads

        folder = self._round_folder(number)
        summary = folder / "collected.json"
        if summary.is_file():
            return folder, json.loads(summary.read_text())["success_rate"]
        count = len(self.states)
        order = np.random.default_rng([self.seed, 7919, number]).permutation(count)
        ids = [int(order[i % count]) for i in range(self.cfg.trajectories)]
        episode_seeds = [int(s) for s in np.random.SeedSequence([self.seed, 7919, number]).generate_state(len(ids))]

        def act(query) -> np.ndarray:
            seeds = [chunk_seed(episode_seeds[e], step // self.task.action_chunk)
                     for e, step in zip(query.episode_ids, query.step)]
            return sample(query.frames, list(query.instructions), seeds).actions

        runner = VectorRunner(self.task, backend=self.backend, num_workers=self.workers)
        try:
            with cpu_threads(1):
                results = runner.run([self.states.states[i] for i in ids], act, state_ids=ids)
        finally:
            runner.close()
        partial = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(partial, ignore_errors=True)
        write_shards([episode_record(r, f"r{number:03d}_e{e:04d}_s{r.state_id:05d}", round=number)
                      for e, r in enumerate(results)], partial)
        success = float(np.mean([r.success for r in results]))
        (partial / "collected.json").write_text(json.dumps({"episodes": len(results), "success_rate": success}) + "\n")
        partial.rename(folder)
        return folder, success

    # -- world-model fine-tuning ------------------------------------------------------------------------------------

    def _fine_tune(self, number: int) -> tuple[Path, float]:
        run = self.root / "world_model"
        source_checkpoint = latest_checkpoint(self.source)
        if source_checkpoint is None:
            raise RuntimeError(f"coevolve.world_model_run={self.source}: no complete world-model checkpoint")
        if latest_checkpoint(run) is None:
            start = run / "checkpoints" / source_checkpoint.name
            shutil.rmtree(start, ignore_errors=True)
            start.mkdir(parents=True)
            for item in source_checkpoint.iterdir():
                _link_or_copy(item, start / item.name)
        base_step = int(source_checkpoint.name.removeprefix("step_"))
        shards = [*load_config(self.source / "config.yaml", []).data.shards,
                  *(str(self._round_folder(n)) for n in range(1, number + 1))]
        steps = base_step + number * self.cfg.wm_steps
        command = [sys.executable, "-m", "opensora.train", "--config", str(self.source / "config.yaml"),
                   f"output={run}", f"data.shards=[{','.join(shards)}]", f"max_steps={steps}", "resume=auto"]
        logfile = self.root / "world_model.log"
        with open(logfile, "a") as handle:
            code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
        if code != 0:
            raise RuntimeError(f"co-evolution round {number}: world-model fine-tuning failed (exit {code}); see "
                               f"{logfile}")
        newest = latest_checkpoint(run)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
        return newest / "ema.safetensors", float(rows[-1]["loss"]) if rows else float("nan")
