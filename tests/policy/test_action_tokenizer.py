import numpy as np
import pytest
import torch

from wmpo.policy import ActionTokenizer, UnknownUnnormKeyError, unnormalize_actions
from wmpo.policy.action_tokenizer import action_stats


def test_tokens_map_to_bin_centers_highest_id_lowest_bin():
    tokenizer = ActionTokenizer(vocab_size=32000, n_bins=256)
    values = tokenizer.tokens_to_normalized(torch.tensor([31999, 31998, 31745, 31744])).tolist()
    step = 2 / 255
    expected = [-1 + step / 2, -1 + 1.5 * step, 1 - step / 2, 1 - step / 2]
    np.testing.assert_allclose(values, expected, atol=1e-6)
    assert tokenizer.token_begin == 31744
    assert tokenizer.slot_to_token(torch.tensor([0, 255])).tolist() == [31744, 31999]


def test_action_range_follows_the_vocabulary_size():
    tokenizer = ActionTokenizer(vocab_size=512, n_bins=256)
    assert tokenizer.token_begin == 256
    assert tokenizer.token_to_slot(torch.tensor([256, 511])).tolist() == [0, 255]
    with pytest.raises(ValueError, match=r"\[256, 512\)"):
        tokenizer.token_to_slot(torch.tensor([255]))


def test_unnormalization_by_hand_with_gripper_pass_through():
    norm_stats = {
        "square_d0_300_demos": {
            "action": {
                "q01": [-0.5, -1.0, 0.0, -0.2, -0.2, 0.3, 0.0],
                "q99": [0.5, 1.0, 2.0, 0.2, 0.2, 0.3, 2.0],
                "mask": [True] * 6 + [False],
            }
        }
    }
    stats = action_stats(norm_stats, "square_d0_300_demos")
    normalized = np.array([[-1.0, 0.0, 0.5, 1.0, -0.5, 0.25, 0.3]])
    got = unnormalize_actions(normalized, stats)
    # 0.5·(x+1)·(q99−q01+1e-8)+q01 per dimension (q01 = q99 on dim 5 isolates the 1e-8); the gripper keeps its
    # normalized value although its statistics would map it to [0, 2].
    expected = [[-0.5, 0.0 + 0.5e-8, 1.5 + 0.75e-8, 0.2 + 1e-8, -0.1 + 0.25e-8, 0.3 + 0.625e-8, 0.3]]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)


def test_unknown_unnorm_key_lists_available_keys():
    norm_stats = {"coffee_d0_300_demos": {}, "square_d0_300_demos": {}}
    with pytest.raises(UnknownUnnormKeyError, match="coffee_d0_300_demos, square_d0_300_demos"):
        action_stats(norm_stats, "stack_d0_300_demos")
