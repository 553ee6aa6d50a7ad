"""Where the policy lives: in the driver process (``LocalBackend``) or sharded over a Ray worker group
(``RayBackend``). The trainer talks to both through the same calls; batches travel as ``Trajectories``
TensorDicts split by rows."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from wmpo.distributed.dispatch import even_slices, split_rows
from wmpo.rollout import Trajectories, concat_trajectories, imagine_groups
from wmpo.sim_rollout import SampledChunk, sample_chunk
from wmpo.workers.offload import move_optimizer_state, optimizer_on


def save_policy_files(path: Path, policy, optimizer_state: dict, model_state: dict | None = None) -> None:
    """``actor/`` in the released layout and ``optimizer.pt`` beside it."""
    from wmpo.policy.checkpoint import save_model

    save_model(policy.model, path / "actor", tokenizer=policy.prompts.tokenizer, state_dict=model_state)
    torch.save(optimizer_state, path / "optimizer.pt")


def prompt_ids(policy, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, L) input ids and attention mask of one instruction."""
    prompt = policy.prompts([instruction])
    return prompt["input_ids"].cpu(), prompt["attention_mask"].cpu()


class LocalBackend:
    """Policy, world model and reward model in this process."""

    def __init__(self, cfg, task, device: torch.device, autocast) -> None:
        from wmpo.policy import load_policy
        from wmpo.trainer import build_imagined_env, needs_imagination

        self.cfg, self.task, self.device, self.autocast = cfg, task, device, autocast
        torch.manual_seed(cfg.seed)
        self.policy = load_policy(cfg.policy_path, task.unnorm_key, device=device)
        params = [p for p in self.policy.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.env = build_imagined_env(cfg, task, device) if needs_imagination(cfg) else None

    def generate(self, first_frames, state_ids, group_ids, seed, record_videos) -> Trajectories:
        return imagine_groups(self.policy, self.env, first_frames, state_ids, group_ids, self.cfg.n_samples,
                              self.task.prompt, self.cfg.temperature, seed, record_videos)

    def update(self, batch: Trajectories) -> dict[str, float]:
        from wmpo.rl.update import update_policy

        with optimizer_on(self.optimizer, self.device, self.cfg.offload_optimizer):
            return update_policy(self.policy, self.optimizer, batch, self.cfg.update, self.autocast)

    def predict(self, frames: np.ndarray, instructions: list[str]) -> np.ndarray:
        return self.policy.predict(frames, instructions, do_sample=False).actions

    def sample(self, frames: np.ndarray, instructions: list[str], seeds: list[int]) -> SampledChunk:
        return sample_chunk(self.policy, frames, instructions, seeds, self.cfg.temperature)

    def prompt(self, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
        return prompt_ids(self.policy, instruction)

    @property
    def token_begin(self) -> int:
        return self.policy.action_tokenizer.token_begin

    def save(self, path: Path) -> None:
        save_policy_files(path, self.policy, self.optimizer.state_dict())

    def load(self, path: Path) -> None:
        from wmpo.policy.checkpoint import load_model

        self.policy.model.load_state_dict(load_model(path / "actor").state_dict())
        self.optimizer.load_state_dict(torch.load(path / "optimizer.pt", map_location="cpu", weights_only=False))
        if self.cfg.offload_optimizer:
            move_optimizer_state(self.optimizer, "cpu")

    def close(self) -> None:
        pass


class RayBackend:
    """The policy sharded with FSDP2 over ``num_workers`` Ray workers (one GPU each when CUDA is available), each
    with its own world model and reward model; groups, trajectories and simulator queries are split evenly across
    workers."""

    def __init__(self, cfg, use_gpu: bool) -> None:
        from wmpo.distributed.worker_group import WorkerGroup
        from wmpo.workers.policy_worker import PolicyWorker

        self.group = WorkerGroup(PolicyWorker, cfg.num_workers, use_gpu, cfg.cpus_per_worker, config=asdict(cfg))
        self.token_begin = self.group.call_one("token_begin")

    def generate(self, first_frames, state_ids, group_ids, seed, record_videos) -> Trajectories:
        parts = even_slices(len(state_ids), len(self.group))
        if any(part.stop == part.start for part in parts):
            raise ValueError(f"rollout batch of {len(state_ids)} groups leaves a worker of {len(self.group)} idle")
        shards = [
            {"first_frames": first_frames[p], "state_ids": state_ids[p], "group_ids": group_ids[p],
             "seed": seed + p.start, "record_videos": record_videos and p.start == 0}
            for p in parts
        ]
        return concat_trajectories(self.group.call_each("generate", shards))

    def update(self, batch: Trajectories) -> dict[str, float]:
        return self.group.call_each("update", split_rows(batch, len(self.group)))[0]

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
