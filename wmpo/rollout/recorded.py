"""Recorded real episodes (the shard format of rollout collection) as ``Trajectories``: the frame before each
8-action chunk, the chunk's action tokens recovered from the executed actions, and the simulator's outcome.

Episodes collected by a policy executed un-normalized bin centers, so tokenizing them with the same statistics gives
back exactly the tokens the policy sampled. The last chunk's actions past ``finish_step`` were never executed: they
repeat the last executed action and are masked out of every log-prob like the unexecuted tokens of a rollout.
"""

from __future__ import annotations

import numpy as np
import torch

from opensora.datasets.shards import EpisodeRef, ShardError
from wmpo.policy.action_tokenizer import ActionTokenizer, action_tokens
from wmpo.policy.modeling import ACTION_CHUNK, NUM_ACTION_TOKENS
from wmpo.rollout.trajectories import Trajectories, concat_trajectories, new_trajectories


def episode_trajectory(episode: EpisodeRef, stats: dict[str, np.ndarray], tokenizer: ActionTokenizer,
                       prompt: tuple[torch.Tensor, torch.Tensor]) -> Trajectories:
    """One episode as a one-row batch; ``prompt`` is the (1, L) input ids and attention mask."""
    steps = episode.finish_step
    actions = episode.executed_actions()
    video = episode.video.open()
    chunks = -(-steps // ACTION_CHUNK)
    if steps < 1 or video.shape[0] < (chunks - 1) * ACTION_CHUNK + 1:
        raise ShardError(f"{episode.shard}: episode {episode.key} has finish_step {steps} but {video.shape[0]} frames")
    if "complete" not in episode.meta:
        raise ShardError(f"{episode.shard}: episode {episode.key} has no 'complete' in its metadata")
    rows = np.minimum(np.arange(chunks * ACTION_CHUNK), steps - 1)
    tokens = action_tokens(actions[rows].reshape(chunks, ACTION_CHUNK, -1), stats, tokenizer)
    input_ids, attention_mask = prompt
    return new_trajectories(
        frames=torch.from_numpy(np.array(video[: chunks * ACTION_CHUNK : ACTION_CHUNK]))[None],
        input_ids=input_ids, attention_mask=attention_mask,
        responses=tokens.reshape(1, chunks, NUM_ACTION_TOKENS),
        old_log_probs=torch.zeros(1, chunks * NUM_ACTION_TOKENS),
        num_chunks=torch.tensor([chunks]), complete=torch.tensor([bool(episode.meta["complete"])]),
        finish_step=torch.tensor([steps]), group=torch.tensor([int(episode.meta.get("state_id", -1))]),
        state_id=torch.tensor([int(episode.meta.get("state_id", -1))]),
    )


def episodes_to_trajectories(episodes: list[EpisodeRef], stats: dict[str, np.ndarray], tokenizer: ActionTokenizer,
                             prompt: tuple[torch.Tensor, torch.Tensor]) -> Trajectories:
    if not episodes:
        raise ShardError("no episodes to build trajectories from")
    return concat_trajectories([episode_trajectory(e, stats, tokenizer, prompt) for e in episodes])
