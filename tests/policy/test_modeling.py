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


def test_forward_matches_an_independent_reference_construction(tiny_policy, frames):
    """Rebuild the released layout by hand: penultimate-block features of both towers, projector, [BOS] + visual
    tokens + prompt[1:] + 56 zero slots + stop, full Llama forward with an all-visible mask, full LM head."""
    model = tiny_policy.model
    inputs, logits = logits_for(tiny_policy, frames[:1], PROMPTS[:1])
    pixels = inputs["pixel_values"]
    features = []
    towers = model.vision_backbone.featurizer, model.vision_backbone.fused_featurizer
    for tower, channels in zip(towers, (slice(0, 3), slice(3, 6))):
        x = tower.norm_pre(tower._pos_embed(tower.patch_embed(pixels[:, channels])))
        for block in tower.blocks[:-1]:
            x = block(x)
        features.append(x[:, tower.num_prefix_tokens :])
    projector = model.projector
    gelu = torch.nn.functional.gelu
    visual = projector.fc3(gelu(projector.fc2(gelu(projector.fc1(torch.cat(features, dim=-1))))))
    ids = inputs["input_ids"][0]
    embed = model.language_model.model.embed_tokens
    slots = torch.zeros(1, 56, visual.shape[-1])
    sequence = torch.cat([embed(ids[:1])[None], visual, embed(ids[1:])[None], slots, embed(torch.tensor([[2]]))], 1)
    visible = torch.ones(1, 1, sequence.shape[1], sequence.shape[1], dtype=torch.bool)
    with torch.no_grad():
        hidden = model.language_model.model(inputs_embeds=sequence, attention_mask=visible).last_hidden_state
        full = model.language_model.lm_head(hidden)
    start = visual.shape[1] + len(ids) - 1
    expected = full[:, start : start + 56, 256:512]
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_log_probs_and_entropy_use_the_temperature(tiny_policy, frames):
    out = tiny_policy.predict(frames, PROMPTS, temperature=1.6, generator=torch.Generator().manual_seed(4))
    _, logits = logits_for(tiny_policy, frames)
    scaled = torch.log_softmax(logits / 1.6, dim=-1)
    slots = out.responses - 256
    torch.testing.assert_close(out.log_probs, scaled.gather(-1, slots[..., None])[..., 0], atol=1e-6, rtol=0)
    with torch.no_grad():
        _, entropy = tiny_policy.log_probs(out.inputs, out.responses, temperature=1.6)
    expected_entropy = -(scaled.exp() * scaled).sum(-1)
    torch.testing.assert_close(entropy, expected_entropy, atol=1e-5, rtol=0)
    unscaled = torch.log_softmax(logits, dim=-1).gather(-1, slots[..., None])[..., 0]
    assert (unscaled - out.log_probs).abs().max() > 1e-4
