"""The colocated worker: a shard of the FSDP2-sharded policy plus, when the run imagines, full copies of the world
model and the reward model (the released placement). Methods that run the policy are collective: the driver calls
them on all workers at once (``prompt`` and ``token_begin`` are asked of rank 0 alone)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from wmpo.distributed.worker_group import DistributedWorker
from wmpo.policy.modeling import ACTION_CHUNK, ACTION_DIM, NUM_ACTION_TOKENS
from wmpo.rollout.simulated import SampledChunk
from wmpo.rollout.trajectories import Trajectories
from wmpo.trainer_config import TrainerConfig


class PolicyWorker(DistributedWorker):
    def __init__(self, rank: int, world_size: int, use_gpu: bool, config: dict):
        super().__init__(rank, world_size, use_gpu)
        logging.basicConfig(level=logging.INFO, format=f"[worker {rank}] %(levelname)s %(message)s")
        self.cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainerConfig), config))

    def setup(self) -> None:
        from wmpo.tasks import get_task
        from wmpo.workers.policy_host import PolicyHost

        self.task = get_task(self.cfg.task)
        self.device = torch.device("cuda" if self.use_gpu else "cpu")
        torch.manual_seed(self.cfg.seed)
        self.host = PolicyHost(self.cfg, self.task, self._load_sharded_policy(self.use_gpu and self.cfg.bf16),
                               self.device)
        self.policy = self.host.policy

    def _load_sharded_policy(self, bf16: bool):
        """Build on the meta device, shard, and fill the shards from rank 0's copy of the checkpoint: only one
        process per group ever holds the full weights in memory."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        from wmpo.policy.checkpoint import load_model
        from wmpo.policy.configuration import OpenVLAConfig
        from wmpo.policy.modeling import OpenVLAForActionPrediction
        from wmpo.policy.parallelize import shard_policy
        from wmpo.policy.policy import VLAPolicy, load_tokenizer

        full = load_model(self.cfg.policy_path).state_dict() if self.rank == 0 else {}
        with torch.device("meta"):
            model = OpenVLAForActionPrediction(OpenVLAConfig.from_pretrained(self.cfg.policy_path))
        shard_policy(model, bf16=bf16)
        model.to_empty(device=self.device)
        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
        set_model_state_dict(model, full, options=options)
        return VLAPolicy(model.eval(), load_tokenizer(self.cfg.policy_path), self.task.unnorm_key)

    def generate(self, first_frames, state_ids, group_ids, seed: int, record_videos: bool) -> Trajectories:
        return self.host.generate(first_frames, state_ids, group_ids, seed, record_videos)

    def generation_profile(self) -> dict[str, float]:
        return self.host.generation_profile()

    def update(self, batch: Trajectories) -> dict[str, float]:
        metrics = self.host.update(batch)
        if self.device.type == "cuda":
            metrics["perf/worker_peak_memory_gib"] = torch.cuda.max_memory_allocated(self.device) / 1024**3
        return metrics

    def sequence_log_probs(self, batch: Trajectories) -> torch.Tensor:
        return self.host.sequence_log_probs(batch)

    def dpo_update(self, chosen: Trajectories, rejected: Trajectories, chosen_ref: torch.Tensor,
                   rejected_ref: torch.Tensor) -> dict[str, float]:
        return self.host.dpo_update(chosen, rejected, chosen_ref, rejected_ref)

    def predict(self, frames: np.ndarray, instructions: list[str]) -> np.ndarray:
        """Greedy actions for this worker's share of the frames (possibly none)."""
        if len(frames) == 0:
            self.policy.idle_forward()
            return np.zeros((0, ACTION_CHUNK, ACTION_DIM))
        return self.host.predict(frames, instructions)

    def sample(self, frames: np.ndarray, instructions: list[str], seeds: list[int]) -> SampledChunk:
        """Sampled chunks for this worker's share of the frames (possibly none), row i seeded with ``seeds[i]``."""
        if len(frames) == 0:
            self.policy.idle_forward()
            return SampledChunk(np.zeros((0, ACTION_CHUNK, ACTION_DIM)),
                                torch.zeros(0, NUM_ACTION_TOKENS, dtype=torch.long), torch.zeros(0, NUM_ACTION_TOKENS))
        return self.host.sample(frames, instructions, seeds)

    def prompt(self, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.host.prompt(instruction)

    def token_begin(self) -> int:
        return self.host.token_begin()

    def full_state(self) -> dict | None:
        """Full model and optimizer states (gathered; returned by rank 0 only)."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(self.policy.model, options=options)
        optimizer_state = get_optimizer_state_dict(self.policy.model, self.host.optimizer, options=options)
        return {"model": model_state, "optimizer": optimizer_state} if self.rank == 0 else None

    def reload_world_model(self, path: str) -> None:
        self.host.reload_world_model(path)

    def save(self, path: str) -> None:
        """Rank 0 writes actor/ (released layout) and optimizer.pt into ``path`` from the gathered states."""
        from wmpo.workers.backends import save_policy_files

        state = self.full_state()
        if state is not None:
            save_policy_files(Path(path), self.policy, state["optimizer"], model_state=state["model"])

    def load(self, path: str) -> None:
        """Rank 0 reads the checkpoint and sends every rank its shards of the model and optimizer states."""
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_model_state_dict,
            set_optimizer_state_dict,
        )

        from wmpo.policy.checkpoint import load_model

        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True)
        model = load_model(Path(path) / "actor").state_dict() if self.rank == 0 else {}
        set_model_state_dict(self.policy.model, model, options=options)
        del model
        optimizer = {}
        if self.rank == 0:
            optimizer = torch.load(Path(path) / "optimizer.pt", map_location="cpu", weights_only=False)
        set_optimizer_state_dict(self.policy.model, self.host.optimizer, optimizer, options=options)
        self.host.after_load()
