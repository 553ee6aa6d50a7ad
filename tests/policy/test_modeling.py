import numpy as np
import pytest
import torch
from scipy import stats

from wmpo.policy import CheckpointMismatchError, load_model, load_policy, save_model
from wmpo.policy.policy import sample_slots


SQUARE_KEY = "square_d0_300_demos"
PROMPTS = ["insert the square into the stick", "insert the square into the stick", "stack_three"]


def logits_for(policy, frames, prompts=PROMPTS):
    inputs = policy.prepare(frames, prompts)
    with torch.no_grad():
        return inputs, policy.model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])


def test_save_load_round_trip_gives_identical_outputs(tiny_policy, tiny_dir, frames, tmp_path):
    inputs, before = logits_for(tiny_policy, frames)
    save_model(tiny_policy.model, tmp_path / "copy", tokenizer=tiny_policy.prompts.tokenizer, max_shard_bytes=200_000)
    shards = sorted(p.name for p in (tmp_path / "copy").glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "copy" / "model.safetensors.index.json").is_file()
    reloaded = load_policy(tmp_path / "copy", SQUARE_KEY)
    _, after = logits_for(reloaded, frames)
    assert torch.equal(before, after)


def _rewrite_one_tensor(src, dst, rename=None, reshape=None):
    from safetensors.torch import load_file, save_file

    dst.mkdir()
    for path in src.iterdir():
        if path.suffix != ".safetensors":
            (dst / path.name).write_bytes(path.read_bytes())
    tensors = {}
    for shard in src.glob("*.safetensors"):
        tensors.update(load_file(shard))
    if rename:
        tensors[rename[1]] = tensors.pop(rename[0])
    if reshape:
        tensors[reshape] = tensors[reshape].reshape(-1)
    (dst / "model.safetensors.index.json").unlink()
    save_file(tensors, str(dst / "model.safetensors"))


def test_strict_loading_names_renamed_and_reshaped_keys(tiny_dir, tmp_path):
    key = "projector.fc2.weight"
    _rewrite_one_tensor(tiny_dir, tmp_path / "renamed", rename=(key, "projector.fc2.kernel"))
    with pytest.raises(CheckpointMismatchError, match=r"missing keys \(1\):\s+projector.fc2.weight") as err:
        load_model(tmp_path / "renamed")
    assert "unexpected keys (1):\n    projector.fc2.kernel" in str(err.value)
    _rewrite_one_tensor(tiny_dir, tmp_path / "reshaped", reshape=key)
    expected = r"shape mismatches \(1\):\s+projector.fc2.weight: checkpoint \[26624\] vs model \[64, 416\]"
    with pytest.raises(CheckpointMismatchError, match=expected):
        load_model(tmp_path / "reshaped")


def test_greedy_decoding_is_the_argmax(tiny_policy, frames):
    _, logits = logits_for(tiny_policy, frames)
    out = tiny_policy.predict(frames, PROMPTS, do_sample=False)
    assert torch.equal(out.responses, logits.argmax(-1) + tiny_policy.action_tokenizer.token_begin)
    expected = tiny_policy.action_tokenizer.tokens_to_normalized(out.responses).view(3, 8, 7)
    assert torch.equal(out.normalized_actions, expected)
    # The tiny checkpoint's statistics are the identity on the six arm dimensions.
    np.testing.assert_allclose(out.actions, expected.numpy(), atol=1e-7)


def test_sampled_frequencies_follow_the_temperature_scaled_softmax(tiny_policy, frames):
    _, logits = logits_for(tiny_policy, frames[:1], PROMPTS[:1])
    # Sharpen the near-uniform logits of a random tiny model so the temperature matters.
    logits = logits[:, :4] * 40.0
    draws = 20000
    slots = sample_slots(logits.expand(draws, -1, -1), 1.6, torch.Generator().manual_seed(0))
    for position in range(logits.shape[1]):
        counts = np.bincount(slots[:, position].numpy(), minlength=256)
        for temperature, should_fit in ((1.6, True), (1.0, False)):
            expected = torch.softmax(logits[0, position] / temperature, -1).double().numpy() * draws
            keep = expected >= 5
            observed = np.append(counts[keep], counts[~keep].sum())
            expected_binned = np.append(expected[keep], expected[~keep].sum())
            chi2 = ((observed - expected_binned) ** 2 / np.maximum(expected_binned, 1e-9)).sum()
            critical = stats.chi2.ppf(0.9999, df=len(observed) - 1)
            assert (chi2 < critical) == should_fit, (position, temperature, chi2, critical)


def test_sampling_is_reproducible_and_per_row_generators_ignore_batch_mates(tiny_policy, frames):
    def run(images, prompts, seeds):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        return tiny_policy.predict(images, prompts, temperature=1.6, generator=gens).responses

    both = run(frames[:2], PROMPTS[:2], [7, 8])
    alone = run(frames[1:2], PROMPTS[1:2], [8])
    assert torch.equal(both[1:], alone)
    assert torch.equal(run(frames[:2], PROMPTS[:2], [7, 8]), both)
    assert not torch.equal(run(frames[:2], PROMPTS[:2], [7, 9])[1], both[1])


def _perturbed_logits(policy, frames, token_id):
    embed = policy.model.language_model.model.embed_tokens.weight
    saved = embed[token_id].clone()
    try:
        with torch.no_grad():
            embed[token_id].add_(torch.randn_like(saved))
        return logits_for(policy, frames[:1], PROMPTS[:1])[1]
    finally:
        with torch.no_grad():
            embed[token_id].copy_(saved)


def test_attention_is_bidirectional(tiny_policy, frames):
    """The stop token (2) comes after every action slot; under a causal mask it could not change any action logit."""
    _, before = logits_for(tiny_policy, frames[:1], PROMPTS[:1])
    after = _perturbed_logits(tiny_policy, frames, 2)
    assert (after[0, 0] - before[0, 0]).abs().max() > 1e-4


def test_action_slot_embeddings_are_zeroed(tiny_policy, frames):
    """The slots hold the padding id; with their embeddings zeroed, that row of the table cannot matter."""
    inputs, before = logits_for(tiny_policy, frames[:1], PROMPTS[:1])
    text, _, slots, _ = tiny_policy.model._layout(inputs["input_ids"], inputs["attention_mask"])
    assert slots.sum() == 56 and text[slots].eq(512).all() and text[0, slots[0].nonzero().max() + 1] == 2
    torch.testing.assert_close(_perturbed_logits(tiny_policy, frames, 512), before, atol=0, rtol=0)


def test_padded_rows_equal_unpadded_rows(tiny_policy, frames):
    inputs, batched = logits_for(tiny_policy, frames)
    length = int(inputs["attention_mask"][2].sum())
    assert length < inputs["input_ids"].shape[1]
    with torch.no_grad():
        single = tiny_policy.model(
            inputs["pixel_values"][2:], inputs["input_ids"][2:, -length:], inputs["attention_mask"][2:, -length:]
        )
    torch.testing.assert_close(batched[2:], single, atol=1e-5, rtol=0)


def test_log_probs_recompute_predict_with_gradients(tiny_policy, frames):
    out = tiny_policy.predict(frames, PROMPTS, temperature=1.6, generator=torch.Generator().manual_seed(3))
    log_probs, entropy = tiny_policy.log_probs(out.inputs, out.responses, temperature=1.6, micro_batch_size=2)
    assert log_probs.shape == entropy.shape == (3, 56)
    torch.testing.assert_close(log_probs.detach(), out.log_probs, atol=1e-5, rtol=0)
    assert (entropy > 0).all() and (entropy <= np.log(256) + 1e-4).all()
    log_probs.sum().backward()
    grad = tiny_policy.model.vision_backbone.featurizer.patch_embed.proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    tiny_policy.model.zero_grad(set_to_none=True)
