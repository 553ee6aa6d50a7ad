import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from opensora.datasets.shards import index_episodes, write_shards
from wmpo.policy import load_policy
from wmpo.policy.tiny import write_tiny_checkpoint
from wmpo.rl.dpo import dpo_terms, preference_pairs
from wmpo.rl.dpo_update import sequence_log_probs, update_dpo
from wmpo.rl.grpo import valid_token_mask
from wmpo.rl.update import UpdateConfig, slice_inputs
from wmpo.rollout.recorded import episodes_to_trajectories

PROMPT = "pick up the cube"


def test_pairs_within_states_then_across_the_single_outcome_states():
    state_ids = np.array([0, 0, 0, 1, 1, 2, 3, 4, 4])
    complete = np.array([True, False, False, True, True, True, False, False, False])
    pairs = preference_pairs(state_ids, complete, seed=0)
    same = [(w, l) for w, l in pairs if state_ids[w] == state_ids[l]]
    assert sorted(same) == [(0, 1), (0, 2)]
    across = [(w, l) for w, l in pairs if state_ids[w] != state_ids[l]]
    # Successes of states 1 and 2 (3) against failures of states 3 and 4 (3): each used once.
    assert sorted(w for w, _ in across) == [3, 4, 5] and sorted(l for _, l in across) == [6, 7, 8]
    assert all(complete[w] and not complete[l] for w, l in pairs)
    assert preference_pairs(state_ids, complete, seed=0, cross_state=False) == sorted(same)
    # The shorter side is cycled: every trajectory of the longer side is in exactly one pair.
    cycled = preference_pairs(np.array([0, 1, 2]), np.array([True, False, False]), seed=1)
    assert sorted(l for _, l in cycled) == [1, 2] and {w for w, _ in cycled} == {0}
    assert preference_pairs(np.array([0, 1]), np.array([False, False]), seed=0) == []


def test_margin_gradient_is_the_derivative_of_the_loss():
    values = [torch.randn(6, dtype=torch.float64, generator=torch.Generator().manual_seed(i)) * 3 for i in range(4)]
    chosen = values[0].clone().requires_grad_(True)
    terms = dpo_terms(chosen, values[1], values[2], values[3], beta=0.3)
    (grad,) = torch.autograd.grad(terms.loss.sum(), chosen)
    torch.testing.assert_close(terms.margin_grad.detach(), grad)
    logits = 0.3 * ((values[0] - values[1]) - (values[2] - values[3]))
    torch.testing.assert_close(terms.loss.detach(), torch.log1p(torch.exp(-logits)))


@pytest.fixture
def recorded(tmp_path, make_policy_episodes):
    write_tiny_checkpoint(tmp_path / "policy", seed=0)
    policy = load_policy(tmp_path / "policy", "lift_scripted_demos")
    specs = [(0, True, 13), (0, False, 24), (1, True, 9), (1, False, 16)]
    episodes, _ = make_policy_episodes(policy, PROMPT, specs)
    write_shards(episodes, tmp_path / "shards")
    prompt = policy.prompts([PROMPT])
    batch = episodes_to_trajectories(index_episodes(tmp_path / "shards"), policy.stats, policy.action_tokenizer,
                                     (prompt["input_ids"], prompt["attention_mask"]))
    return policy, batch


def _direct_sums(policy, batch, temperature):
    sums = []
    for row in range(len(batch)):
        chunks = slice(0, int(batch.num_chunks[row]))
        log_probs, _ = policy.log_probs(slice_inputs(policy, batch, row, chunks), batch.responses[row, chunks],
                                        temperature=temperature)
        mask = valid_token_mask(batch.finish_step[row : row + 1], chunks.stop * 56).reshape(log_probs.shape)
        sums.append((log_probs.double() * mask).sum())
    return torch.stack(sums)


def test_sliced_two_pass_update_equals_the_whole_trajectory_gradient(recorded):
    policy, batch = recorded
    chosen, rejected = batch[torch.tensor([0, 2])], batch[torch.tensor([1, 3])]
    params = [p for p in policy.model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in params]
    policy.model.train()
    sums = _direct_sums(policy, batch, temperature=1.3)
    # References that put β·Δ at −1.5 and +0.5: both pairs carry a sizeable gradient.
    chosen_ref = sums[[0, 2]].detach() + torch.tensor([8.0, -2.0], dtype=torch.float64)
    rejected_ref = sums[[1, 3]].detach() - torch.tensor([7.0, -3.0], dtype=torch.float64)
    logits = 0.1 * ((sums[[0, 2]] - chosen_ref) - (sums[[1, 3]] - rejected_ref))
    loss = -F.logsigmoid(logits).mean()
    expected = torch.autograd.grad(loss, params, allow_unused=True)
    optimizer = torch.optim.SGD(params, lr=1.0)
    cfg = UpdateConfig(temperature=1.3, ppo_mini_batch_size=2, traj_mini_batch_size=1, grad_clip=1e9)
    metrics = update_dpo(policy, optimizer, chosen, rejected, chosen_ref, rejected_ref, cfg, beta=0.1)
    assert metrics["actor/optimizer_steps"] == 1
    assert metrics["dpo/loss"] == pytest.approx(float(loss.detach()), rel=1e-5)
    assert metrics["dpo/reward_margin"] == pytest.approx(float(logits.detach().mean()), rel=1e-5, abs=1e-6)
    compared = 0
    for old, new, grad in zip(before, params, expected):
        if grad is None:
            continue
        torch.testing.assert_close(old - new.detach(), grad, rtol=1e-4, atol=1e-4 * float(grad.abs().max()) + 1e-7)
        compared += int(grad.abs().max() > 1e-4)
    assert compared > 0


def test_first_step_against_the_policy_itself_has_zero_margin(recorded):
    policy, batch = recorded
    chosen, rejected = batch[torch.tensor([0, 2])], batch[torch.tensor([1, 3])]
    reference = sequence_log_probs(policy, batch, temperature=1.0, step=1)
    policy.model.train()
    torch.testing.assert_close(reference, _direct_sums(policy, batch, 1.0).detach(), rtol=1e-6, atol=1e-6)
    optimizer = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=1e-3)
    cfg = UpdateConfig(temperature=1.0, ppo_mini_batch_size=2, traj_mini_batch_size=2)
    first = update_dpo(policy, optimizer, chosen, rejected, reference[[0, 2]], reference[[1, 3]], cfg, beta=0.1)
    assert first["dpo/reward_margin"] == pytest.approx(0.0, abs=1e-6)
    assert first["dpo/loss"] == pytest.approx(math.log(2.0), abs=1e-6)
    for _ in range(3):
        later = update_dpo(policy, optimizer, chosen, rejected, reference[[0, 2]], reference[[1, 3]], cfg, beta=0.1)
    # Training on the pairs raises the preferred trajectories' likelihood relative to the rejected ones.
    assert later["dpo/reward_margin"] > 0 and later["dpo/loss"] < math.log(2.0)
