"""Where the policy lives: in the driver process (``LocalBackend``) or sharded over a Ray worker group
(``RayBackend``). The trainer talks to both through the same calls; batches travel as ``Trajectories``
TensorDicts split by rows."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wmpo.distributed.dispatch import even_slices, split_rows
from wmpo.rollout.simulated import SampledChunk
from wmpo.rollout.trajectories import Trajectories, concat_trajectories, split_off_videos

GenerateResult = tuple[Trajectories, Trajectories | None]
"""The update batch, and the rows with recorded videos (for logging) when videos were asked for."""


def save_policy_files(path: Path, policy, optimizer_state: dict, model_state: dict | None = None) -> None:
    """``actor/`` in the released layout and ``optimizer.pt`` (keyed by parameter name) beside it."""
    from wmpo.policy.checkpoint import save_model

    save_model(policy.model, path / "actor", tokenizer=policy.prompts.tokenizer, state_dict=model_state)
    torch.save(optimizer_state, path / "optimizer.pt")


class LocalBackend:
    """The policy (and, when the run imagines, the world model and reward model) in this process."""

    def __init__(self, cfg, task, device: torch.device) -> None:
        from wmpo.policy import load_policy
        from wmpo.workers.policy_host import PolicyHost

        torch.manual_seed(cfg.seed)
        self.host = PolicyHost(cfg, task, load_policy(cfg.policy_path, task.unnorm_key, device=device), device)
        self.policy, self.optimizer = self.host.policy, self.host.optimizer
        self.predict, self.sample, self.prompt = self.host.predict, self.host.sample, self.host.prompt
        self.token_begin = self.host.token_begin()

    def generate(self, first_frames, state_ids, group_ids, seed, record_videos) -> GenerateResult:
        return split_off_videos(self.host.generate(first_frames, state_ids, group_ids, seed, record_videos))

    def generation_profiles(self) -> list[dict[str, float]]:
        """Per imagining process: seconds per phase and denoiser FLOPs since the last call."""
        return [self.host.generation_profile()]

    def update(self, batch: Trajectories) -> dict[str, float]:
        return self.host.update(batch)

    def monitor(self, first_frames: torch.Tensor, results: list, strip_path: Path) -> dict[str, float]:
        return self.host.monitor(first_frames, results, strip_path)

    def sequence_log_probs(self, batch: Trajectories) -> torch.Tensor:
        return self.host.sequence_log_probs(batch)

    def reload_world_model(self, path: Path) -> None:
        self.host.reload_world_model(str(path))

    def dpo_update(self, chosen: Trajectories, rejected: Trajectories, chosen_ref: torch.Tensor,
                   rejected_ref: torch.Tensor) -> dict[str, float]:
        return self.host.dpo_update(chosen, rejected, chosen_ref, rejected_ref)

    def save(self, path: Path) -> None:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        # Keyed by parameter name, like the sharded workers' files: either backend resumes the other's checkpoint.
        save_policy_files(path, self.policy, get_optimizer_state_dict(self.policy.model, self.optimizer))

    def load(self, path: Path) -> None:
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        from wmpo.policy.checkpoint import load_model

        self.policy.model.load_state_dict(load_model(path / "actor").state_dict())
        state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False)
        set_optimizer_state_dict(self.policy.model, self.optimizer, state)
        self.host.after_load()

    def close(self) -> None:
        pass


class RayBackend:
    """The policy sharded with FSDP2 over ``num_workers`` Ray workers (one GPU each when CUDA is available), each
    with its own world model and reward model when the run imagines; groups, trajectories and simulator queries are
    split evenly across workers."""

    def __init__(self, cfg, use_gpu: bool) -> None:
        from wmpo.distributed.worker_group import WorkerGroup
        from wmpo.workers.policy_worker import PolicyWorker

        self.group = WorkerGroup(PolicyWorker, cfg.num_workers, use_gpu, cfg.cpus_per_worker, config=asdict(cfg))
        self.token_begin = self.group.call_one("token_begin")

    def generate(self, first_frames, state_ids, group_ids, seed, record_videos) -> GenerateResult:
        parts = even_slices(len(state_ids), len(self.group))
        if any(part.stop == part.start for part in parts):
            raise ValueError(f"rollout batch of {len(state_ids)} groups leaves a worker of {len(self.group)} idle")
        frames = split_rows(first_frames, len(self.group))
        shards = [(f, state_ids[p], group_ids[p], seed + p.start, record_videos and p.start == 0)
                  for f, p in zip(frames, parts)]
        batches, recorded = zip(*(split_off_videos(b) for b in self.group.call_each("generate", shards)))
        return concat_trajectories(list(batches)), recorded[0]

    def generation_profiles(self) -> list[dict[str, float]]:
        return self.group.call_all("generation_profile")

    def update(self, batch: Trajectories) -> dict[str, float]:
        return self.group.call_each("update", [(shard,) for shard in split_rows(batch, len(self.group))])[0]

    def sequence_log_probs(self, batch: Trajectories) -> torch.Tensor:
        return torch.cat(self.group.call_each("sequence_log_probs",
                                              [(shard,) for shard in split_rows(batch, len(self.group))]))

    def dpo_update(self, chosen: Trajectories, rejected: Trajectories, chosen_ref: torch.Tensor,
                   rejected_ref: torch.Tensor) -> dict[str, float]:
        # The same row split for all four keeps each pair on one worker.
        shards = zip(*(split_rows(part, len(self.group)) for part in (chosen, rejected, chosen_ref, rejected_ref)))
        return self.group.call_each("dpo_update", list(shards))[0]

    def reload_world_model(self, path: Path) -> None:
        self.group.call_all("reload_world_model", str(path))

    def predict(self, frames: np.ndarray, instructions: list[str]) -> np.ndarray:
        parts = even_slices(len(frames), len(self.group))
        return np.concatenate(self.group.call_each("predict", [(frames[p], instructions[p]) for p in parts]))

    def sample(self, frames: np.ndarray, instructions: list[str], seeds: list[int]) -> SampledChunk:
        parts = even_slices(len(frames), len(self.group))
        shards = [(frames[p], instructions[p], seeds[p]) for p in parts]
        return SampledChunk.concat(self.group.call_each("sample", shards))

    def prompt(self, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.group.call_one("prompt", instruction)

    def save(self, path: Path) -> None:
        self.group.call_all("save", str(path))

    def load(self, path: Path) -> None:
        self.group.call_all("load", str(path))

    def close(self) -> None:
        self.group.shutdown()
