import math

import pytest
import torch

from wmpo.rl.group_buffer import GroupBuffer
from wmpo.rl.grpo import (
    grpo_advantages,
    informative_groups,
    masked_token_mean,
    policy_loss,
    token_level_rewards,
    valid_token_mask,
)


def test_one_success_in_eight_gives_the_reference_advantages():
    scores = torch.tensor([5.0] + [0.0] * 7)
    adv = grpo_advantages(scores, torch.zeros(8, dtype=torch.long))
    # mean 0.625, unbiased std sqrt(8·0.625·4.375/7) = 1.7678
    assert adv[0].item() == pytest.approx(2.4749, abs=1e-3) and adv[1].item() == pytest.approx(-0.3536, abs=1e-3)
    groups = torch.tensor([0, 0, 1, 1, 2])
    adv = grpo_advantages(torch.tensor([5.0, 0.0, 5.0, 5.0, 5.0]), groups)
    # [5, 0]: mean 2.5, unbiased std 2.5·sqrt(2)
    assert adv[:2].tolist() == pytest.approx([1 / math.sqrt(2), -1 / math.sqrt(2)], abs=1e-5)
    assert adv[2:4].abs().max() < 1e-3  # all-success group: no signal
    assert adv[4].item() == pytest.approx(5.0 / (1.0 + 1e-6))  # group of one: mean 0, std 1


def test_rewards_and_masks_follow_finish_step():
    finish = torch.tensor([2, 0, 16])
    mask = valid_token_mask(finish, num_tokens=112)
    assert mask.sum(1).tolist() == [14, 0, 112]
    rewards = token_level_rewards(torch.tensor([True, False, True]), finish, 112)
    assert rewards[0, 13] == 5.0 and rewards[0].sum() == 5.0
    assert rewards[1].sum() == 0.0 and rewards[2, 111] == 5.0


def test_clipping_on_both_sides_and_token_mean_aggregation():
    old = torch.zeros(2, 4)
    new = torch.log(torch.tensor([[1.5, 1.5, 0.5, 1.0], [1.5, 0.5, 1.0, 1.0]]))
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    adv = torch.tensor([1.0, -1.0])
    out = policy_loss(new, old, adv, mask, clip_ratio_low=0.2, clip_ratio_high=0.28)
    # Row 0 (A=+1): ratio 1.5 clipped to 1.28, ratio 0.5 keeps -0.5 (max picks the unclipped smaller gain):
    row0 = (-1.28 - 1.28 - 0.5) / 3
    # Row 1 (A=-1): ratio 1.5 stays 1.5 (max picks unclipped), ratio 0.5 clipped to 0.8:
    row1 = (1.5 + 0.8) / 2
    assert out.loss.item() == pytest.approx((row0 + row1) / 2, abs=1e-6)
    assert out.clip_fraction == pytest.approx(3 / 5)
    assert out.approx_kl == pytest.approx(float(-(new * mask).sum() / 5), abs=1e-6)


def test_gradients_vanish_where_clipped_and_masked():
    new = torch.log(torch.tensor([[2.0, 1.0, 1.0]])).requires_grad_()
    out = policy_loss(new, torch.zeros(1, 3), torch.tensor([1.0]), torch.tensor([[True, True, False]]))
    out.loss.backward()
    assert new.grad[0, 0] == 0.0 and new.grad[0, 1] != 0.0 and new.grad[0, 2] == 0.0


def test_masked_mean_of_an_empty_row_is_zero():
    values = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert masked_token_mean(values, torch.tensor([[True, False], [False, False]])).tolist() == [1.0, 0.0]


def test_optional_entropy_and_kl_terms():
    log_probs = torch.log(torch.tensor([[0.5, 0.5]]))
    mask = torch.ones(1, 2, dtype=torch.bool)
    base = policy_loss(log_probs, log_probs, torch.tensor([1.0]), mask).loss
    with_entropy = policy_loss(
        log_probs, log_probs, torch.tensor([1.0]), mask, entropy=torch.tensor([[2.0, 2.0]]), entropy_coeff=0.1
    )
    assert with_entropy.loss.item() == pytest.approx(base.item() - 0.2) and with_entropy.entropy == 2.0
    ref = log_probs - 1.0
    with_kl = policy_loss(log_probs, log_probs, torch.tensor([1.0]), mask, ref_log_probs=ref, kl_coef=0.5)
    assert with_kl.loss.item() == pytest.approx(base.item() + 0.5 * (math.exp(-1) + 1 - 1))


def test_group_filter_and_carry_over_buffer():
    complete = torch.tensor([1, 0, 1, 1, 0, 0, 1, 0], dtype=torch.bool)
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert informative_groups(complete, groups, 0.1, 0.9) == [0, 3]
    buffer = GroupBuffer()
    buffer.add(["a", "b", "c"])
    assert buffer.take(2) == ["a", "b"] and len(buffer) == 1
    restored = GroupBuffer()
    restored.load_state_dict(buffer.state_dict())
    restored.add(["d"])
    assert restored.take(5) == ["c", "d"] and len(restored) == 0
