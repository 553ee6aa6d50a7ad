"""What a process holding the policy (whole, or one FSDP2 shard) does for the trainer: imagined rollouts, simulator
queries, GRPO and DPO updates, all at the same precision so rollout and update log-probs are computed alike."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from wmpo.imagination import build_imagined_env
from wmpo.policy.policy import VLAPolicy
from wmpo.rollout.imagined import imagine_groups
from wmpo.rollout.profiling import GenerationProfile
from wmpo.rollout.simulated import SampledChunk, sample_chunk
from wmpo.rollout.trajectories import Trajectories
from wmpo.trainer_config import needs_imagination
from wmpo.workers.offload import move_optimizer_state, optimizer_on


class PolicyHost:
    """The policy with its AdamW optimizer and, when the run imagines, a world model and a reward model."""

    def __init__(self, cfg, task, policy: VLAPolicy, device: torch.device) -> None:
        self.cfg, self.task, self.policy, self.device = cfg, task, policy, device
        params = [p for p in policy.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.env = build_imagined_env(cfg, task, device) if needs_imagination(cfg) else None
        bf16 = device.type == "cuda" and cfg.bf16
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else None
        self.profile = GenerationProfile(device)

    def inference(self):
        return self.autocast if self.autocast is not None else nullcontext()

    def generate(self, first_frames, state_ids, group_ids, seed: int, record_videos: bool) -> Trajectories:
        with self.inference(), self.profile.measuring(self.policy, self.env):
            batch = imagine_groups(self.policy, self.env, first_frames, state_ids, group_ids, self.cfg.n_samples,
                                 self.task.prompt, self.cfg.temperature, seed, record_videos,
                                 jpeg_resize=self.cfg.imagination.jpeg_resize, slots=self.cfg.imagination.slots)
        self.profile.add_denoiser_work(self.env, int(batch.num_chunks.sum()))
        return batch

    def generation_profile(self) -> dict[str, float]:
        """Seconds per imagination phase and denoiser FLOPs since the last call (see ``GenerationProfile.take``)."""
        return self.profile.take()

    def update(self, batch: Trajectories) -> dict[str, float]:
        from wmpo.rl.update import update_policy

        with optimizer_on(self.optimizer, self.device, self.cfg.offload_optimizer):
            return update_policy(self.policy, self.optimizer, batch, self.cfg.update, self.autocast)

    def sequence_log_probs(self, batch: Trajectories) -> torch.Tensor:
        """(B,) sums of the trajectories' executed-token log-probs at the update temperature."""
        from wmpo.rl.dpo_update import sequence_log_probs

        self.policy.model.eval()
        return sequence_log_probs(self.policy, batch, self.cfg.update.temperature,
                                  self.cfg.update.traj_mini_batch_size, self.autocast)

    def dpo_update(self, chosen: Trajectories, rejected: Trajectories, chosen_ref: torch.Tensor,
                   rejected_ref: torch.Tensor) -> dict[str, float]:
        from wmpo.rl.dpo_update import update_dpo

        with optimizer_on(self.optimizer, self.device, self.cfg.offload_optimizer):
            return update_dpo(self.policy, self.optimizer, chosen, rejected, chosen_ref, rejected_ref,
                              self.cfg.update, self.cfg.dpo.beta, self.autocast)

    def monitor(self, first_frames: torch.Tensor, results: list, strip_path) -> dict[str, float]:
        """World-model and reward-model fidelity on a real evaluation's episodes (see ``wmpo.fidelity.monitor``)."""
        from wmpo.fidelity import monitor

        icfg = self.cfg.imagination
        with self.inference():
            return monitor(self.policy, self.env, self.task.prompt, first_frames, results, self.cfg.seed,
                           icfg.jpeg_resize, self.cfg.monitors.replay_episodes, strip_path)

    def reload_world_model(self, path: str) -> None:
        """Imagine with other world-model weights from now on (co-evolution's refreshed model)."""
        from opensora.checkpoint_io import load_weights

        load_weights(self.env.wm.model, path)

    def predict(self, frames: np.ndarray, instructions: list[str]) -> np.ndarray:
        """Greedy actions (B, 8, 7)."""
        with self.inference():
            return np.asarray(self.policy.predict(frames, instructions, do_sample=False).actions)

    def sample(self, frames: np.ndarray, instructions: list[str], seeds: list[int]) -> SampledChunk:
        with self.inference():
            return sample_chunk(self.policy, frames, instructions, seeds, self.cfg.temperature)

    def prompt(self, instruction: str) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, L) input ids and attention mask of one instruction."""
        prompt = self.policy.prompts([instruction])
        return prompt["input_ids"].cpu(), prompt["attention_mask"].cpu()

    def token_begin(self) -> int:
        return self.policy.action_tokenizer.token_begin

    def after_load(self) -> None:
        """Loading an optimizer state puts it next to the parameters; offloading keeps it in CPU memory."""
        if self.cfg.offload_optimizer:
            move_optimizer_state(self.optimizer, "cpu")
