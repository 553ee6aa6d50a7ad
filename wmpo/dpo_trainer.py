"""The DPO baseline (``algorithm=dpo``): offline trajectory-level DPO on recorded real rollouts.

Preference pairs (a success and a failure, from the same initial state where one has both) come from the episodes
of ``dpo.shards``; the reference is the starting policy, frozen: its log-prob sums are computed once, before any
update, and kept in ``<output>/dpo_reference.pt`` so a resumed run uses the same ones. Iteration k takes the next
``train_batch_size`` pairs of a seeded permutation per pass over the pairs; the rest of the run (evaluation,
checkpoints, metrics, restarts) is the WMPO trainer's.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from opensora.datasets.shards import index_episodes
from opensora.training.settings import SettingError
from wmpo.rl.dpo import preference_pairs
from wmpo.rollout.recorded import episodes_to_trajectories
from wmpo.rollout.trajectories import Trajectories
from wmpo.trainer import Trainer
from wmpo.trainer_checkpoint import latest_checkpoint

log = logging.getLogger("wmpo")

REFERENCE_FILE = "dpo_reference.pt"
REFERENCE_BATCH = 8
"""Trajectories per reference log-prob call (per worker)."""


def write_quickstart_preferences(cfg, task, folder: Path, episodes_per_state: int = 1) -> None:
    """Preference data for runs without recorded rollouts: a random policy never succeeds, so each of the first
    ``train_batch_size`` initial states gets one scripted-expert episode (the successes) and ``episodes_per_state``
    of the policy's at the rollout temperature (the failures)."""
    from opensora.datasets.shards import write_shards
    from wmpo.envs.initial_states import load_initial_states
    from wmpo.envs.vector import VectorRunner
    from wmpo.policy import load_policy
    from wmpo.rollout.collection import collect_rollouts, episode_record

    states = load_initial_states(Path(cfg.initial_states), task=task.name, with_frames=False).states
    states = states[: cfg.train_batch_size]
    policy = load_policy(cfg.policy_path, task.unnorm_key)
    log.info("recording preference episodes of %d %s states into %s", len(states), task.name, folder)
    runner = VectorRunner(task, backend=cfg.evaluation.backend, num_workers=cfg.evaluation.workers,
                          scripted_expert=True, expert_seed=cfg.seed)
    try:
        expert = [episode_record(r, f"expert_s{r.state_id:05d}") for r in runner.run(states, None)]
        rolled = collect_rollouts(policy, runner, states, episodes_per_state, cfg.temperature, cfg.seed)
    finally:
        runner.close()
    write_shards(expert + rolled, folder)


class DPOTrainer(Trainer):
    def _create_missing_assets(self) -> None:
        super()._create_missing_assets()
        folder = Path(self.cfg.dpo.shards[0])
        if len(self.cfg.dpo.shards) == 1 and not folder.exists():
            write_quickstart_preferences(self.cfg, self.task, folder)

    def _maybe_resume(self) -> None:
        self._load_preferences()
        super()._maybe_resume()

    def _load_preferences(self) -> None:
        from wmpo.policy.action_tokenizer import ActionTokenizer, action_stats
        from wmpo.policy.configuration import OpenVLAConfig

        cfg = self.cfg
        try:
            self.episodes = index_episodes(list(cfg.dpo.shards))
        except FileNotFoundError as exc:
            raise SettingError(f"dpo.shards={list(cfg.dpo.shards)}: {exc}") from None
        unlabeled = [e for e in self.episodes if "complete" not in e.meta]
        if unlabeled:
            raise SettingError(f"dpo.shards: {unlabeled[0].shard}: episode {unlabeled[0].key} (and "
                               f"{len(unlabeled) - 1} more) has no 'complete' in its metadata: DPO needs each "
                               "episode's real outcome")
        # An episode without a state id is a state of its own: it is only paired across states.
        state_ids = np.array([int(e.meta.get("state_id", -1 - i)) for i, e in enumerate(self.episodes)])
        complete = np.array([bool(e.meta["complete"]) for e in self.episodes])
        self.pairs = preference_pairs(state_ids, complete, cfg.seed, cfg.dpo.cross_state)
        same_state = sum(state_ids[w] == state_ids[l] for w, l in self.pairs)
        log.info("%d episodes (%d successes) from %s: %d preference pairs (%d from the same initial state)",
                 len(self.episodes), int(complete.sum()), ", ".join(cfg.dpo.shards), len(self.pairs), same_state)
        if not self.pairs:
            raise SettingError(f"dpo.shards={list(cfg.dpo.shards)}: no preference pair among {len(self.episodes)} "
                               f"episodes ({int(complete.sum())} successes); DPO needs successes and failures"
                               + ("" if cfg.dpo.cross_state else " from the same initial state"))
        config = OpenVLAConfig.from_pretrained(cfg.policy_path)
        self.stats = action_stats(config.norm_stats, self.task.unnorm_key)
        self.tokenizer = ActionTokenizer(config.vocab_size, config.n_action_bins)
        self.prompt_ids = self.backend.prompt(self.task.prompt)
        self.reference = self._reference_sums()

    def trajectories(self, rows: list[int]) -> Trajectories:
        return episodes_to_trajectories([self.episodes[r] for r in rows], self.stats, self.tokenizer, self.prompt_ids)

    def _reference_key(self) -> dict:
        return {"episodes": [f"{e.shard}:{e.key}" for e in self.episodes], "policy_path": self.cfg.policy_path,
                "temperature": self.cfg.update.temperature}

    def _reference_sums(self) -> torch.Tensor:
        """Log π_ref(τ) of every episode, from the cache when it matches this run's data and starting policy."""
        path = self.output / REFERENCE_FILE
        key = self._reference_key()
        if path.is_file():
            cached = torch.load(path, map_location="cpu", weights_only=False)
            if cached["key"] == key:
                return cached["sums"]
        resumes = self.cfg.resume not in ("auto", "none") or (
            self.cfg.resume == "auto" and latest_checkpoint(self.output) is not None)
        if resumes:
            raise SettingError(f"{path}: missing, or made for other episodes, policy or temperature; the reference "
                               "log-probs come from the starting policy, so a resumed run cannot recompute them: "
                               "start in a new output folder (or with resume=none)")
        sums, step = [], REFERENCE_BATCH * max(1, self.cfg.num_workers)
        for first in tqdm(range(0, len(self.episodes), step), desc="reference log-probs", unit="batch"):
            rows = list(range(first, min(first + step, len(self.episodes))))
            sums.append(self.backend.sequence_log_probs(self.trajectories(rows)))
        sums = torch.cat(sums)
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"key": key, "sums": sums}, tmp)
        tmp.replace(path)
        return sums

    def _pair_order(self, index: int) -> tuple[int, int]:
        """The ``index``-th pair of the run: a seeded permutation per pass over the pairs."""
        epoch, position = divmod(index, len(self.pairs))
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(self.pairs))
        return self.pairs[int(order[position])]

    def learn(self) -> dict[str, float]:
        cfg = self.cfg
        pairs = [self._pair_order(self.next_group + i) for i in range(cfg.train_batch_size)]
        self.next_group += cfg.train_batch_size
        winners, losers = [w for w, _ in pairs], [l for _, l in pairs]
        start = time.perf_counter()
        metrics = self.backend.dpo_update(self.trajectories(winners), self.trajectories(losers),
                                          self.reference[winners], self.reference[losers])
        metrics.update({"time/update_s": time.perf_counter() - start, "actor/lr": cfg.lr,
                        "dpo/pairs": len(self.pairs), "dpo/epoch": self.next_group / len(self.pairs)})
        return metrics
