"""Groups of rollouts in the real simulator, recorded like imagined ones (the GRPO-in-simulator baseline).

The vectorized runner queries the policy once per chunk for every active episode; the query callback samples the
chunk with the episode's own generator and records what an update needs (the frame seen, the tokens, their
log-probs). Success and finish_step come from the simulator instead of the reward model.
"""

from __future__ import annotations

import numpy as np
import torch

from wmpo.envs.vector import VectorRunner
from wmpo.policy.modeling import NUM_ACTION_TOKENS
from wmpo.policy.policy import VLAPolicy
from wmpo.rollout import Trajectories


def simulate_groups(
    policy: VLAPolicy,
    runner: VectorRunner,
    states: list[dict],
    state_ids: list[int],
    group_ids: list[int],
    n_samples: int,
    instruction: str,
    temperature: float,
    seed: int,
) -> Trajectories:
    """``n_samples`` sampled episodes from each state."""
    episodes = [state for state in states for _ in range(n_samples)]
    ids = [state_id for state_id in state_ids for _ in range(n_samples)]
    seeds = np.random.SeedSequence([seed, *state_ids]).generate_state(len(episodes))
    generators = [torch.Generator(device=policy.device).manual_seed(int(s)) for s in seeds]
    seen: dict[int, list] = {i: [] for i in range(len(episodes))}

    def act(query) -> np.ndarray:
        out = policy.predict(query.frames, query.instructions, do_sample=True, temperature=temperature,
                             generator=[generators[e] for e in query.episode_ids])
        for row, episode in enumerate(query.episode_ids):
            seen[episode].append((query.frames[row], out.responses[row].cpu(), out.log_probs[row].float().cpu()))
        return out.actions

    results = runner.run(episodes, act, state_ids=ids, progress=False)
    chunks = max(len(record) for record in seen.values())
    height, width = next(iter(seen.values()))[0][0].shape[:2]
    frames = torch.zeros(len(episodes), chunks, height, width, 3, dtype=torch.uint8)
    responses = torch.full((len(episodes), chunks, NUM_ACTION_TOKENS), policy.action_tokenizer.token_begin)
    log_probs = torch.zeros(len(episodes), chunks * NUM_ACTION_TOKENS)
    for episode, record in seen.items():
        for chunk, (frame, tokens, chunk_log_probs) in enumerate(record):
            frames[episode, chunk] = torch.from_numpy(np.asarray(frame))
            responses[episode, chunk] = tokens
            log_probs[episode, chunk * NUM_ACTION_TOKENS : (chunk + 1) * NUM_ACTION_TOKENS] = chunk_log_probs
    prompt = policy.prompts([instruction] * len(episodes))
    return Trajectories(
        frames=frames,
        input_ids=prompt["input_ids"].cpu(),
        attention_mask=prompt["attention_mask"].cpu(),
        responses=responses,
        old_log_probs=log_probs,
        num_chunks=torch.tensor([len(seen[i]) for i in range(len(episodes))]),
        complete=torch.tensor([r.success for r in results]),
        finish_step=torch.tensor([r.finish_step for r in results]),
        group=torch.tensor(group_ids).repeat_interleave(n_samples),
        state_id=torch.tensor(ids),
        videos=None,
    )
