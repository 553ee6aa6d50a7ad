"""Groups of rollouts in the real simulator, recorded like imagined ones (the GRPO-in-simulator baseline).

The vectorized runner queries the policy once per chunk for every active episode. Each query row is sampled with a
generator seeded from (episode seed, chunk index), so a row's draw depends neither on its batch-mates nor on which
worker computes it; the query callback records what an update needs (the frame seen, the tokens, their log-probs).
Success and finish_step come from the simulator instead of the reward model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from wmpo.envs.vector import VectorRunner
from wmpo.policy.modeling import NUM_ACTION_TOKENS
from wmpo.policy.policy import VLAPolicy
from wmpo.rollout.trajectories import Trajectories, new_trajectories


@dataclass
class SampledChunk:
    """One sampled chunk per query row."""

    actions: np.ndarray
    """(B, 8, 7) actions in environment units."""
    responses: torch.Tensor
    """(B, 56) token ids."""
    log_probs: torch.Tensor
    """(B, 56) float32 log-probs at the sampling temperature."""

    @staticmethod
    def concat(parts: list[SampledChunk]) -> SampledChunk:
        return SampledChunk(
            np.concatenate([p.actions for p in parts]),
            torch.cat([p.responses for p in parts]),
            torch.cat([p.log_probs for p in parts]),
        )


def sample_chunk(
    policy: VLAPolicy, frames: np.ndarray, instructions: list[str], seeds: list[int], temperature: float
) -> SampledChunk:
    """Sample one chunk per frame, row i from a generator seeded with ``seeds[i]``."""
    generators = [torch.Generator(device=policy.device).manual_seed(int(s)) for s in seeds]
    out = policy.predict(frames, instructions, do_sample=True, temperature=temperature, generator=generators)
    return SampledChunk(out.actions, out.responses.cpu(), out.log_probs.float().cpu())


def chunk_seed(episode_seed: int, chunk: int) -> int:
    return int(np.random.SeedSequence([episode_seed, chunk]).generate_state(1)[0])


def simulate_groups(
    sample: Callable[[np.ndarray, list[str], list[int]], SampledChunk],
    runner: VectorRunner,
    states: list[dict],
    state_ids: list[int],
    group_ids: list[int],
    n_samples: int,
    prompt: tuple[torch.Tensor, torch.Tensor],
    token_begin: int,
    seed: int,
) -> Trajectories:
    """``n_samples`` sampled episodes from each state; ``sample(frames, instructions, seeds)`` queries the policy,
    ``prompt`` is the (1, L) ids and mask of the instruction and ``token_begin`` the first action token id."""
    episodes = [state for state in states for _ in range(n_samples)]
    ids = [state_id for state_id in state_ids for _ in range(n_samples)]
    episode_seeds = [int(s) for s in np.random.SeedSequence([seed, *state_ids]).generate_state(len(episodes))]
    seen: dict[int, list] = {i: [] for i in range(len(episodes))}

    def act(query) -> np.ndarray:
        # Chunk indices come from the executed steps, so an episode the runner reruns from its start (its worker
        # died) overwrites its records and draws the same samples again.
        chunks = [step // runner.task.action_chunk for step in query.step]
        seeds = [chunk_seed(episode_seeds[e], c) for e, c in zip(query.episode_ids, chunks)]
        out = sample(query.frames, list(query.instructions), seeds)
        for row, (episode, chunk) in enumerate(zip(query.episode_ids, chunks)):
            del seen[episode][chunk:]
            seen[episode].append((query.frames[row], out.responses[row], out.log_probs[row]))
        return out.actions

    results = runner.run(episodes, act, state_ids=ids, progress=False)
    chunks = max(len(record) for record in seen.values())
    height, width = next(iter(seen.values()))[0][0].shape[:2]
    frames = torch.zeros(len(episodes), chunks, height, width, 3, dtype=torch.uint8)
    responses = torch.full((len(episodes), chunks, NUM_ACTION_TOKENS), token_begin)
    log_probs = torch.zeros(len(episodes), chunks * NUM_ACTION_TOKENS)
    for episode, record in seen.items():
        for chunk, (frame, tokens, chunk_log_probs) in enumerate(record):
            frames[episode, chunk] = torch.from_numpy(np.asarray(frame))
            responses[episode, chunk] = tokens
            log_probs[episode, chunk * NUM_ACTION_TOKENS : (chunk + 1) * NUM_ACTION_TOKENS] = chunk_log_probs
    input_ids, attention_mask = prompt
    return new_trajectories(
        frames=frames,
        input_ids=input_ids.expand(len(episodes), -1).clone(),
        attention_mask=attention_mask.expand(len(episodes), -1).clone(),
        responses=responses,
        old_log_probs=log_probs,
        num_chunks=torch.tensor([len(seen[i]) for i in range(len(episodes))]),
        complete=torch.tensor([r.success for r in results]),
        finish_step=torch.tensor([r.finish_step for r in results]),
        group=torch.tensor(group_ids).repeat_interleave(n_samples),
        state_id=torch.tensor(ids),
    )
