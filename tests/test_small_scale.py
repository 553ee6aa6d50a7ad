import json
from dataclasses import replace

import pytest

from opensora.datasets.shards import index_episodes
from wmpo.experiments.report import wilson_interval
from wmpo.experiments.small_scale import STAGES, Experiment, SmallScaleConfig


def test_wilson_interval_matches_the_closed_form():
    low, high = wilson_interval(30, 100)
    assert low == pytest.approx(0.2189, abs=1e-4) and high == pytest.approx(0.3958, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    assert all(wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0 for n in range(1, 300))
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


@pytest.mark.slow
@pytest.mark.sim
def test_reduced_pipeline_leaves_every_artefact(tmp_path):
    cfg = SmallScaleConfig(output=str(tmp_path / "run"), demos=4, expert_noise=0.0, sft_steps=12, sft_batch_size=8,
                           budget=8, rm_heldout=2, rm_replays=True, wm_steps=6, rm_steps=4, wmpo_iterations=2, groups=2,
                           n_samples=4, eval_episodes=4, curve_every=1, curve_episodes=2, coevolve_every=1,
                           coevolve_trajectories=2, coevolve_wm_steps=2)
    Experiment(replace(cfg, arms=["wmpo", "grpo_sim", "dpo"])).run()
    out = tmp_path / "run"
    first = json.loads((out / "results.json").read_text())
    assert list(first["arms"]) == ["base", "wmpo", "grpo_sim", "dpo"] and "wmpo_coevolve_curve" not in first
    # Asking for another arm trains it and evaluates it alone; the other arms' evaluations are reused.
    for arm in ("base", "wmpo", "grpo_sim", "dpo"):
        saved = out / "evaluation" / arm / "eval_results.json"
        saved.write_text(saved.read_text().replace('"success": false', '"success": true'))
    Experiment(cfg).run()
    records = json.loads((out / "stages.json").read_text())
    assert set(records) == set(STAGES)
    for folder in ("states/demos", "states/train", "states/eval", "demos", "sft/policy", "budget/main",
                   "budget/heldout", "world_model/checkpoints", "reward_model", "wmpo/checkpoints",
                   "grpo_sim/checkpoints", "wmpo_coevolve/coevolve/round_001"):
        assert (out / folder).is_dir(), folder
    # The reward model also learned from the world model's replays of the 6 training budget episodes, outcomes kept.
    budget = {e.key: e.meta["complete"] for e in index_episodes([str(out / "budget" / "main")])}
    replays = index_episodes([str(out / "reward_model" / "replays")])
    assert {e.meta["replay_of"]: e.meta["complete"] for e in replays} == budget and len(budget) == 6
    replay = json.loads((out / "world_model" / "open_loop.json").read_text())
    assert replay["episodes"] >= 1 and len(replay["psnr_per_chunk"]) == len(replay["copy_first_psnr_per_chunk"])
    sft_rows = [json.loads(line) for line in (out / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert sft_rows[0]["iteration"] == 0 and sft_rows[-1]["val/loss"] < sft_rows[0]["val/loss"]
    results = json.loads((out / "results.json").read_text())
    assert results["arms"]["base"]["successes"] == 4
    for arm in ("base", "wmpo", "wmpo_coevolve", "grpo_sim", "dpo"):
        row = results["arms"][arm]
        assert row["episodes"] == 4 and 0.0 <= row["ci95"][0] <= row["success_rate"] <= row["ci95"][1] <= 1.0
    assert results["arms"]["grpo_sim"]["real_trajectories_used"] == 8
    assert results["arms"]["wmpo"]["real_trajectories_used"] == 8
    assert results["arms"]["dpo"]["real_trajectories_used"] == 8
    # One refresh (before the second of two iterations) collected two more real trajectories.
    assert records["wmpo_coevolve"]["rounds"] == 1 and results["arms"]["wmpo_coevolve"]["real_trajectories_used"] == 10
    if records["dpo"]["pairs"] == 0:  # a budget with a single outcome leaves DPO nothing to learn from
        assert results["arms"]["dpo"]["successes"] == results["arms"]["base"]["successes"]
    else:
        assert (out / "dpo" / "checkpoints").is_dir() and (out / "dpo" / "dpo_reference.pt").is_file()
    assert results["world_model_agreement"]["states"] == 4
    assert results["world_model_replay_outcomes"]["states"] == 2  # the held-out budget episodes
    assert [p["iteration"] for p in results["wmpo_curve"]] == [0, 1, 2]
    assert [p["iteration"] for p in results["wmpo_coevolve_curve"]] == [0, 1, 2]
    report = (out / "report.md").read_text()
    assert report.startswith("# Small-scale WMPO experiment") and "World model + reward model judging" in report
    assert (out / "success.png").stat().st_size > 1000
    # A rerun finds every stage complete and does nothing.
    Experiment(cfg).run()
    assert json.loads((out / "stages.json").read_text()) == records


def test_unknown_arms_are_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown \\['ppo'\\]"):
        Experiment(SmallScaleConfig(output=str(tmp_path / "run"), arms=["wmpo", "ppo"]))
