import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import VideoMAEImageProcessor

from wmpo.reward import build_reward_model, load_reward_model, preprocess_clips, save_reward_model
from wmpo.reward.model import RewardModelLoadError, to_released_naming

MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "videomae_base_reward.json"


def test_released_key_layout_loads_strictly_and_matches_current_naming(tmp_path):
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        model = build_reward_model("base")
    released = {k: list(v.shape) for k, v in to_released_naming(model.state_dict()).items()}
    assert released == manifest["tensors"]
    print(f"VideoMAE-base reward model: {sum(p.numel() for p in model.parameters()):,} parameters")
    assert sum(p.numel() for p in model.parameters()) == manifest["num_elements"]

    torch.manual_seed(0)
    tiny = build_reward_model("tiny")
    old_file, new_file = tmp_path / "released.pth", tmp_path / "current.pth"
    save_reward_model(tiny, old_file)
    torch.save(tiny.state_dict(), new_file)
    assert any(k.endswith("q_bias") for k in torch.load(old_file))
    clip = torch.randn(2, 8, 3, 64, 64)
    with torch.no_grad():
        logits = [load_reward_model(f, "tiny")(pixel_values=clip).logits for f in (old_file, new_file)]
    assert torch.equal(logits[0], logits[1])
    torch.testing.assert_close(logits[0], tiny(pixel_values=clip).logits)


def test_wrong_files_fail_naming_the_keys(tmp_path):
    state = build_reward_model("tiny").state_dict()
    state["classifier.weight"] = torch.zeros(3, 32)
    state["fc_norm.weight"] = torch.zeros(32)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(RewardModelLoadError, match=r"unexpected \(1\): fc_norm.weight") as err:
        load_reward_model(tmp_path / "bad.pth", "tiny")
    assert "classifier.weight: file [3, 32] vs model [2, 32]" in str(err.value)
    with pytest.raises(FileNotFoundError):
        load_reward_model(tmp_path / "missing.pth", "tiny")


@pytest.mark.parametrize("height, width", [(256, 256), (240, 320), (224, 224)])
def test_preprocessing_matches_the_transformers_processor(height, width):
    processor = VideoMAEImageProcessor(
        size={"shortest_edge": 224},
        crop_size={"height": 224, "width": 224},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    rng = np.random.default_rng(height + width)
    clips = rng.integers(0, 256, size=(2, 8, height, width, 3), dtype=np.uint8)
    expected = processor([list(clip) for clip in clips], return_tensors="pt")["pixel_values"]
    got = preprocess_clips(torch.from_numpy(clips), 224)
    assert got.shape == expected.shape == (2, 8, 3, 224, 224)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
