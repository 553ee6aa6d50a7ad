import json

import pytest
import torch
from safetensors.torch import save_file

from opensora.checkpoint_io import read_state_dict
from opensora.weight_files import WeightFileError
from wmpo.policy import load_policy
from wmpo.policy.checkpoint import INDEX_FILE
from wmpo.policy.tiny import write_tiny_checkpoint
from wmpo.reward.model import load_reward_model


@pytest.fixture
def policy(tmp_path):
    return write_tiny_checkpoint(tmp_path / "policy")


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_policy_shard_is_named(policy):
    shard = sorted(policy.glob("model*.safetensors"))[0]
    truncate(shard)
    with pytest.raises(WeightFileError, match=f"{shard}: unreadable safetensors file.*truncated or damaged"):
        load_policy(policy, "square_d0_300_demos")


def test_a_stale_index_is_named_with_the_shard_and_the_tensor(policy):
    index = json.loads((policy / INDEX_FILE).read_text())
    shard = next(iter(index["weight_map"].values()))
    index["weight_map"]["language_model.extra.weight"] = shard
    (policy / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(WeightFileError, match=f"{policy / shard}: {INDEX_FILE} lists tensor 'language_model.extra"):
        load_policy(policy, "square_d0_300_demos")


def test_world_model_files_truncated_or_with_a_stale_index_are_named(tmp_path):
    single = tmp_path / "ema.safetensors"
    save_file({"x_embedder.proj.weight": torch.zeros(64, 64)}, str(single))
    truncate(single)
    with pytest.raises(WeightFileError, match=f"{single}: unreadable safetensors"):
        read_state_dict(single)
    folder = tmp_path / "sharded"
    folder.mkdir()
    save_file({"a": torch.zeros(2)}, str(folder / "model-00001.safetensors"))
    index = {"weight_map": {"a": "model-00001.safetensors", "b": "model-00001.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(WeightFileError, match="lists tensor 'b' but the file does not hold it"):
        read_state_dict(folder)


@pytest.mark.parametrize("content", [b"garbage" * 20, None])
def test_a_garbage_or_truncated_pth_is_named_without_unsafe_advice(tmp_path, content):
    path = tmp_path / "videomae_square.pth"
    if content is None:
        torch.save({"w": torch.zeros(1000)}, path)
        truncate(path)
    else:
        path.write_bytes(content)
    with pytest.raises(WeightFileError) as caught:
        load_reward_model(path, "tiny")
    assert str(path) in str(caught.value)
    assert "weights_only" not in str(caught.value)
