import json
import subprocess
import sys

import numpy as np
import pytest

from opensora.datasets.shards import Episode, ShardError, index_episodes, write_shards
from opensora.datasets.windows import WindowDataset, load_action_bounds, normalize_actions
from wmpo.data.statistics import action_statistics
from wmpo.policy.action_tokenizer import action_stats
from wmpo.policy.sft_data import StepExamples


def episode(key, actions):
    video = np.zeros((len(actions) + 1, 8, 8, 3), np.uint8)
    return Episode(key, video, np.asarray(actions, np.float32), {"finish_step": len(actions)})


@pytest.fixture
def nan_shards(tmp_path):
    actions = np.zeros((12, 7), np.float32)
    actions[5, 3] = np.nan
    write_shards([episode("good", np.zeros((12, 7))), episode("broken", actions)], tmp_path / "shards")
    return tmp_path / "shards"


def test_non_finite_actions_are_named_by_shard_episode_and_key(nan_shards):
    refs = index_episodes(nan_shards)
    for build in (lambda: StepExamples(refs), lambda: WindowDataset(refs, np.zeros(7), np.ones(7))):
        with pytest.raises(ShardError) as caught:
            build()
        message = str(caught.value)
        assert ".tar" in message and "episode broken" in message and "broken.action.npy" in message
        assert "step 5, dimension 3" in message


def test_actions_of_the_wrong_dimension_are_named(tmp_path):
    write_shards([episode("six", np.zeros((12, 6)))], tmp_path)
    with pytest.raises(ShardError, match=r"episode six.*shape \(12, 6\), expected \(N, 7\)"):
        StepExamples(index_episodes(tmp_path))


def test_statistics_refuse_non_finite_actions_and_the_script_writes_nothing(nan_shards, tmp_path):
    bad = np.zeros((4, 7))
    bad[2, 1] = np.inf
    with pytest.raises(ValueError, match="non-finite action inf in dimension 1"):
        action_statistics([bad])
    output = tmp_path / "stats.json"
    run = subprocess.run([sys.executable, "scripts/compute_statistics.py", f"shards=[{nan_shards}]",
                          f"output={output}"], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "episode broken" in run.stderr and "Traceback" not in run.stderr
    assert not output.exists()


def test_a_constant_dimension_normalizes_to_a_finite_value():
    q01 = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], np.float32)
    q99 = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], np.float32)
    actions = np.array([[1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]], np.float32)
    out = normalize_actions(actions, q01, q99)
    assert np.isfinite(out).all()
    assert out[0, 0] == 0.0 and out[0, 1] == -1.0


def test_bad_statistics_files_are_named(tmp_path):
    path = tmp_path / "dataset_statistics.json"
    path.write_text(json.dumps({"k": {"action": {"q01": [0.0] * 6, "q99": [1.0] * 6}}}))
    with pytest.raises(ValueError, match="q01 has 6 values, expected 7"):
        load_action_bounds(path)
    path.write_text(json.dumps({"k": {"action": {"q01": [0.0] * 7, "q99": [1.0] * 6 + [float("nan")]}}}))
    with pytest.raises(ValueError, match=f"{path}: action q99 is not finite"):
        load_action_bounds(path)
    norm_stats = {"k": {"action": {"q01": [0.0] * 6, "q99": [1.0] * 6, "mask": [True] * 6}}}
    with pytest.raises(ValueError, match=r"norm_stats\['k'\].action.q01 has 6 values"):
        action_stats(norm_stats, "k")
