"""The imagined environment: world model + VAE + reward model behind reset()/step(chunk).

Each trajectory has its own generator, so its imagined frames do not depend on which other trajectories share the
batch. Trajectories finish at the horizon or, with ``stop_on_success``, at their first success window (the released
code kept generating to the horizon and only then scored the video); finished trajectories cost nothing further.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from opensora.world_model import WorldModel
from wmpo.reward.model import build_reward_model, load_reward_model
from wmpo.reward.scoring import IncrementalScorer

log = logging.getLogger("wmpo")


@dataclass
class ImaginedStep:
    frames: torch.Tensor
    """(B, 8, H, W, 3) uint8 new frames (zeros for trajectories that were already done)."""
    done: torch.Tensor
    """(B,) bool: finished (success found or horizon reached)."""
    success: torch.Tensor
    """(B,) bool: a success window was found."""
    finish_step: torch.Tensor
    """(B,) int64: last frame of the success window, or the last generated frame index."""


class ImaginedEnv:
    """Batched imagination with the chunk-level contract of the real vectorized runner."""

    def __init__(
        self,
        world_model: WorldModel,
        reward_model: torch.nn.Module,
        threshold: float,
        max_steps: int,
        min_steps: int = 100,
        stop_on_success: bool = True,
        reward_batch_size: int = 512,
        count_last_window: bool = False,
    ) -> None:
        self.wm = world_model
        self.reward_model = reward_model
        self.threshold, self.max_steps, self.min_steps = threshold, max_steps, min_steps
        self.stop_on_success = stop_on_success
        self.reward_batch_size = reward_batch_size
        self.count_last_window = count_last_window

    def reset(self, first_frames: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """Start B trajectories from uint8 frames (B, H, W, 3); returns the frames the policy sees first."""
        device = self.wm.device
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        batch = first_frames.shape[0]
        self.context = self.wm.initial_context(first_frames.to(device), self.generators)
        self.frames_done = torch.ones(batch, dtype=torch.long)  # frame 0 exists
        self.done = torch.zeros(batch, dtype=torch.bool)
        self.scorer = IncrementalScorer(
            self.reward_model, self.threshold, batch, self.max_steps + 1, min_steps=self.min_steps,
            batch_size=self.reward_batch_size, count_last=self.count_last_window,
        )
        self.scorer.update(first_frames[:, None].cpu())
        self.last_frames = first_frames.cpu().clone()
        return self.last_frames

    @torch.no_grad()
    def step(self, normalized_actions: torch.Tensor, rows: list[int] | None = None) -> ImaginedStep:
        """Advance the unfinished trajectories ``rows`` (default: all unfinished ones) by one chunk of actions
        (B, 8, 7); the other rows' actions are ignored."""
        active = (~self.done).nonzero().flatten().tolist() if rows is None else list(rows)
        if any(bool(self.done[row]) for row in active):
            raise ValueError(f"rows {[row for row in active if self.done[row]]} have already finished")
        batch = self.done.shape[0]
        chunk = self.wm.spec.chunk
        height, width = self.last_frames.shape[1:3]
        frames = torch.zeros(batch, chunk, height, width, 3, dtype=torch.uint8)
        if active:
            actions = normalized_actions[active].to(self.wm.device)
            latents = self.wm.predict(self.context[active], actions, [self.generators[i] for i in active])
            new_frames = self.wm.decode(latents).cpu()
            frames[active] = new_frames
            self.context[active] = self.wm.next_context(self.context[active], latents)
            self.last_frames[active] = new_frames[:, -1]
            self.frames_done[active] += chunk
            self.scorer.update(new_frames, rows=active)
        success = torch.tensor(self.scorer.done)
        horizon = self.frames_done > self.max_steps
        self.done = horizon | (success & self.stop_on_success)
        finish = torch.tensor([d.finish_step for d in self.scorer.decisions()], dtype=torch.long)
        return ImaginedStep(frames, self.done.clone(), success, finish)

    def best_scores(self) -> list[float]:
        """Per trajectory: the reward model's highest score of a window that may decide, so far."""
        return self.scorer.best_scores()


def build_imagined_env(cfg, task, device: torch.device) -> ImaginedEnv:
    """World model, VAE and reward model of a TrainerConfig, on ``device`` (world model and VAE in bf16 on CUDA
    with ``bf16``, as the released rollouts ran)."""
    icfg = cfg.imagination
    dtype = torch.bfloat16 if device.type == "cuda" and cfg.bf16 else torch.float32
    wm = WorldModel.build(icfg.world_model, device=device, dtype=dtype)
    if icfg.reward_model_path:
        reward = load_reward_model(icfg.reward_model_path, icfg.reward_preset)
    else:
        log.warning("no reward_model_path: using a randomly initialized reward model")
        reward = build_reward_model(icfg.reward_preset)
    threshold = icfg.rm_threshold if icfg.rm_threshold is not None else task.rm_threshold
    max_steps = icfg.max_steps or task.max_steps
    return ImaginedEnv(wm, reward.to(device), threshold, max_steps, icfg.min_steps, icfg.stop_on_success,
                       count_last_window=icfg.count_last_window)
