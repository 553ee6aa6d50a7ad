import json

import pytest

from wmpo.policy import OpenVLAConfig, PolicyConfigError, preset

RELEASED_CONFIG = {
    "arch_specifier": "no-align+fused-gelu-mlp",
    "architectures": ["OpenVLAForActionPrediction"],
    "auto_map": {"AutoConfig": "configuration_prismatic.OpenVLAConfig"},
    "hf_llm_id": "meta-llama/Llama-2-7b-hf",
    "image_resize_strategy": "resize-naive",
    "image_sizes": [224, 224],
    "llm_backbone_id": "llama2-7b-pure",
    "llm_max_length": 2048,
    "model_type": "openvla",
    "n_action_bins": 256,
    "norm_stats": {"square_d0_300_demos": {"action": {"q01": [0] * 7, "q99": [1] * 7}}},
    "output_projector_states": False,
    "pad_to_multiple_of": 64,
    "pad_token_id": 32000,
    "text_config": {"model_type": "llama", "pad_token_id": 32000, "torch_dtype": "bfloat16", "vocab_size": 32064},
    "timm_model_ids": ["vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"],
    "timm_override_act_layers": [None, None],
    "torch_dtype": "bfloat16",
    "transformers_version": "4.40.1",
    "use_fused_vision_backbone": True,
    "vision_backbone_id": "dinosiglip-vit-so-224px",
}


def test_released_config_round_trips_and_gives_llama2_7b(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(RELEASED_CONFIG))
    config = OpenVLAConfig.from_pretrained(tmp_path)
    assert config.vocab_size == 32000 and config.action_token_begin == 31744
    llama = config.llama_config()
    assert (llama.hidden_size, llama.num_hidden_layers, llama.intermediate_size, llama.vocab_size) == (
        4096,
        32,
        11008,
        32064,
    )
    out = tmp_path / "saved"
    config.save(out)
    assert json.loads((out / "config.json").read_text()) == RELEASED_CONFIG


def test_dataset_statistics_override_config_norm_stats(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(RELEASED_CONFIG))
    stats = {"other_key": {"action": {"q01": [-1] * 7, "q99": [2] * 7}}}
    (tmp_path / "dataset_statistics.json").write_text(json.dumps(stats))
    assert OpenVLAConfig.from_pretrained(tmp_path).norm_stats == stats


def test_bad_configs_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        OpenVLAConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**RELEASED_CONFIG, "model_type": "llava"}))
    with pytest.raises(PolicyConfigError, match="llava"):
        OpenVLAConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**RELEASED_CONFIG, "vision_backbone_id": "siglip-vit-so400m"}))
    with pytest.raises(PolicyConfigError, match="siglip-vit-so400m"):
        OpenVLAConfig.from_pretrained(tmp_path)
    with pytest.raises(PolicyConfigError, match="known presets"):
        preset("13b")
