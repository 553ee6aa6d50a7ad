"""Real-rollout budget collection: the policy, sampling at a temperature, in the simulator; episodes in the
world-model shard format (``opensora.datasets.shards.Episode``)."""

from __future__ import annotations

import numpy as np
import torch

from opensora.datasets.shards import Episode
from wmpo.envs.vector import EpisodeResult, VectorRunner
from wmpo.policy.policy import VLAPolicy


def episode_record(result: EpisodeResult, key: str, **meta) -> Episode:
    """A finished simulator episode as a shard episode (``complete`` = the simulator's success; ``success_step`` when
    the episode went on after its first success)."""
    fields = {"finish_step": result.finish_step, "complete": result.success, "state_id": result.state_id, **meta}
    if result.success_step is not None and result.success_step < result.finish_step:
        fields["success_step"] = result.success_step
    return Episode(key, result.frames, result.actions, fields)


def collect_rollouts(
    policy: VLAPolicy,
    runner: VectorRunner,
    states: list[dict],
    epochs: int,
    temperature: float,
    seed: int,
) -> list[Episode]:
    """``epochs`` passes over ``states``; episode e of pass k samples with its own generator seeded by
    (seed, k, e), so a pass does not depend on how episodes were spread over the simulator workers."""
    episodes = []
    for epoch in range(epochs):
        generators: dict[int, torch.Generator] = {}

        def act(query, epoch=epoch, generators=generators) -> np.ndarray:
            for episode, step in zip(query.episode_ids, query.step):
                if step == 0:  # also when the runner reruns an episode whose worker died: the same draws again
                    value = int(np.random.SeedSequence([seed, epoch, episode]).generate_state(1)[0])
                    generators[episode] = torch.Generator(device=policy.device).manual_seed(value)
            out = policy.predict(query.frames, query.instructions, do_sample=True, temperature=temperature,
                                 generator=[generators[e] for e in query.episode_ids])
            return out.actions

        results = runner.run(states, act, state_ids=list(range(len(states))))
        episodes += [episode_record(r, f"e{epoch:03d}_s{r.state_id:05d}", epoch=epoch) for r in results]
    return episodes
