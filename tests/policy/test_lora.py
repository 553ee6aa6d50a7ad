import torch

from wmpo.policy import load_policy
from wmpo.policy.lora import add_lora, linear_layer_names, merge_and_save
from wmpo.policy.policy import VLAPolicy


def test_lora_covers_all_linear_layers_but_the_head_and_merges_into_released_names(tiny_dir, frames, tmp_path):
    policy = load_policy(tiny_dir, "square_d0_300_demos")
    names = linear_layer_names(policy.model)
    assert "language_model.lm_head" not in names
    expected = {
        "projector.fc1",
        "language_model.model.layers.0.self_attn.q_proj",
        "vision_backbone.featurizer.blocks.0.attn.qkv",
    }
    assert expected <= set(names)

    peft_model = add_lora(policy.model, rank=4)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.05)  # B starts at zero; make the adapters change the outputs
    adapted = VLAPolicy(peft_model, policy.prompts.tokenizer, "square_d0_300_demos")
    inputs = adapted.prepare(frames, ["stack_three"] * len(frames))
    with torch.no_grad():
        with_adapters = peft_model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])

    merge_and_save(peft_model, tmp_path / "merged", tokenizer=policy.prompts.tokenizer)
    merged = load_policy(tmp_path / "merged", "square_d0_300_demos")
    base = load_policy(tiny_dir, "square_d0_300_demos")
    with torch.no_grad():
        after = merged.model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        original = base.model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
    torch.testing.assert_close(after, with_adapters, atol=1e-4, rtol=0)
    assert (after - original).abs().max() > 1e-3
