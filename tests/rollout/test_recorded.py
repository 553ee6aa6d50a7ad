import torch

from opensora.datasets.shards import index_episodes, write_shards
from wmpo.policy import load_policy
from wmpo.policy.tiny import write_tiny_checkpoint
from wmpo.rl.grpo import valid_token_mask
from wmpo.rollout.recorded import episodes_to_trajectories


def test_recorded_episodes_give_back_the_tokens_the_policy_sampled(tmp_path, make_policy_episodes):
    write_tiny_checkpoint(tmp_path / "policy", seed=0)
    policy = load_policy(tmp_path / "policy", "lift_scripted_demos")
    episodes, sampled = make_policy_episodes(policy, "pick up the cube", [(0, True, 13), (1, False, 16), (2, False, 3)])
    write_shards(episodes, tmp_path / "shards")
    prompt = policy.prompts(["pick up the cube"])
    batch = episodes_to_trajectories(index_episodes(tmp_path / "shards"), policy.stats, policy.action_tokenizer,
                                     (prompt["input_ids"], prompt["attention_mask"]))
    assert batch.num_chunks.tolist() == [2, 2, 1]
    assert batch.finish_step.tolist() == [13, 16, 3]
    assert batch.complete.tolist() == [True, False, False]
    assert batch.state_id.tolist() == [0, 1, 2]
    for row, (episode, tokens) in enumerate(zip(episodes, sampled)):
        chunks = tokens.shape[0]
        mask = valid_token_mask(batch.finish_step[row : row + 1], chunks * 56).reshape(chunks, 56)
        # Every executed token is the sampled one (the unexecuted tail of the last chunk is never trained).
        assert torch.equal(batch.responses[row, :chunks][mask], tokens[mask])
        assert torch.equal(batch.frames[row, :chunks], torch.from_numpy(episode.video[0 : chunks * 8 : 8]))
