import json
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import check_checkpoints  # noqa: E402

import download_hf  # noqa: E402
from opensora.models.stdit3 import STDiT3, preset  # noqa: E402
from opensora.models.vae import FrameVAE  # noqa: E402
from wmpo.policy.tiny import write_tiny_checkpoint  # noqa: E402
from wmpo.reward import build_reward_model, save_reward_model  # noqa: E402

LISTING = ROOT / "tests" / "fixtures" / "hf_listing.json"


def test_dry_run_plans_exactly_the_selection(capsys):
    args = ["--listing", str(LISTING), "--dry-run", "--tasks", "square", "--what", "sft,world_model,reward_model"]
    assert download_hf.main(args + ["--budget", "128"]) == 0
    out = capsys.readouterr().out.splitlines()
    paths = [line.split()[-1] for line in out[:-1]]
    listing = json.loads(LISTING.read_text())
    expected = sorted(
        p for p in listing
        if p.startswith(("checkpoint_files/SFT_models/square/", "checkpoint_files/world_models/square/P_128/"))
        or p == "checkpoint_files/reward_models/videomae_square.pth"
    )
    assert paths == expected
    total = sum(listing[p] for p in expected)
    assert out[-1].split()[-3:] == ["in", str(len(expected)), "files"]
    assert out[-1].strip().startswith(download_hf.human(total))


def test_data_selection_follows_the_budget_names():
    listing = json.loads(LISTING.read_text())
    patterns = download_hf.plan_patterns(["data"], ["coffee"], ["1280"])
    chosen, empty = download_hf.select(listing, patterns)
    assert empty == [] and any("coffee_1280_demos_dpo/" in p for p in chosen)
    assert not any("square" in p or "_128_" in p for p in chosen)


def test_bad_selections_and_offline_fail_fast(monkeypatch, capsys):
    assert download_hf.main(["--listing", str(LISTING), "--what", "weights"]) == 2
    assert "choose from" in capsys.readouterr().err
    assert download_hf.main(["--listing", str(LISTING), "--what", "openx", "--dry-run", "--tasks", "coffee"]) == 0
    empty_listing = {"checkpoint_files/other.bin": 3}
    monkeypatch.setattr(download_hf, "remote_listing", lambda repo, token: empty_listing)
    monkeypatch.setattr(download_hf, "check_reachable", lambda: None)
    assert download_hf.main(["--what", "vae", "--dry-run"]) == 2
    assert "no file of fangqi/WMPO matches: checkpoint_files/world_models/vae/*" in capsys.readouterr().err
    monkeypatch.undo()
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there: refused at once
    start = time.perf_counter()
    assert download_hf.main(["--what", "sft", "--tasks", "square"]) == 2
    assert time.perf_counter() - start < 10
    assert "cannot reach 127.0.0.1" in capsys.readouterr().err


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """Tiny checkpoints of every kind, written in the released layouts."""
    root = tmp_path_factory.mktemp("release") / "checkpoint_files"
    write_tiny_checkpoint(root / "SFT_models" / "square")
    torch.manual_seed(0)
    (root / "world_models" / "square" / "P_128").mkdir(parents=True)
    torch.save(STDiT3(preset("tiny")).state_dict(), root / "world_models" / "square" / "P_128" / "ema.pt")
    FrameVAE.from_config("tiny").module.save_pretrained(root / "world_models" / "vae")
    save_reward_model(build_reward_model("tiny"), root / "reward_models" / "videomae_square.pth")
    return root


def run_check(capsys, *args):
    code = check_checkpoints.main([*map(str, args), "--world-model-preset", "tiny", "--reward-preset", "tiny"])
    return code, capsys.readouterr().out


def test_check_passes_on_released_layouts(release, capsys):
    code, out = run_check(capsys, release)
    assert code == 0, out
    assert "4/4 components match" in out
    for kind in ("policy", "world_model", "vae", "reward_model"):
        assert f"{kind} " in out


def test_check_names_a_renamed_or_reshaped_tensor(release, tmp_path, capsys):
    shard = next((release / "SFT_models" / "square").glob("model-*.safetensors"))
    tensors = load_file(shard)
    tensors["projector.fc1.weight"] = tensors["projector.fc1.weight"].flatten()
    save_file(tensors, str(tmp_path / "shard.safetensors"))
    original = shard.read_bytes()
    shard.write_bytes((tmp_path / "shard.safetensors").read_bytes())
    try:
        code, out = run_check(capsys, release / "SFT_models")
    finally:
        shard.write_bytes(original)
    assert code == 1 and "shape mismatch: projector.fc1.weight" in out

    state = torch.load(release / "world_models" / "square" / "P_128" / "ema.pt")
    state["t_block.1.kernel"] = state.pop("t_block.1.weight")
    torch.save(state, tmp_path / "ema.pt")
    bad = tmp_path / "world_models" / "task" / "P_128"
    bad.mkdir(parents=True)
    (tmp_path / "ema.pt").rename(bad / "ema.pt")
    code, out = run_check(capsys, tmp_path / "world_models")
    assert code == 1 and "missing: t_block.1.weight" in out and "unexpected: t_block.1.kernel" in out


def test_check_names_a_missing_unnorm_key_and_a_missing_config(tmp_path, capsys):
    from wmpo.policy.tiny import unit_norm_stats

    stats = unit_norm_stats()
    policy = write_tiny_checkpoint(tmp_path / "SFT_models" / "square",
                                   norm_stats={"other_task": next(iter(stats.values()))})
    code, out = run_check(capsys, policy)
    assert code == 1 and "norm_stats lack square's unnorm key 'square_d0_300_demos'" in out and "other_task" in out

    (policy / "config.json").unlink()
    code, out = run_check(capsys, policy)
    assert code == 1 and "config.json is missing" in out
