"""Initial-state files: round trip, reproducible first frames, clear errors on bad files."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wmpo.envs import StateError
from wmpo.envs.initial_states import StateFileError, load_initial_states, sample_initial_states, save_initial_states

pytestmark = pytest.mark.sim
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def saved(tmp_path_factory, square_env):
    folder = tmp_path_factory.mktemp("states") / "square"
    states, frames = sample_initial_states(square_env, 2, seed=7, progress=False)
    save_initial_states(folder, "square", square_env.backend, 7, states, frames)
    return folder, states, frames


def test_round_trip(saved):
    folder, states, frames = saved
    loaded = load_initial_states(folder, task="square")
    assert (loaded.task, loaded.backend, loaded.seed, len(loaded)) == ("square", "builtin", 7, 2)
    np.testing.assert_array_equal(loaded.frames, frames)
    for a, b in zip(loaded.states, states):
        assert a["model"] == b["model"]
        np.testing.assert_array_equal(a["states"], b["states"])
    assert len(np.load(folder / "states.npz")["models"]) == 1  # the shared XML is stored once


def test_states_differ_and_are_seeded(saved, square_env):
    _, states, _ = saved
    assert not np.allclose(states[0]["states"], states[1]["states"])
    again, _ = sample_initial_states(square_env, 1, seed=7, progress=False)
    np.testing.assert_array_equal(again[0]["states"], states[0]["states"])


def test_restored_state_rerenders_first_frame(saved, square_env):
    folder, _, _ = saved
    loaded = load_initial_states(folder)
    for i in (1, 0):  # restore in another order than they were written
        frame = square_env.start_episode(loaded.states[i])
        assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8
        np.testing.assert_array_equal(frame, loaded.frames[i])


def test_wrong_task(saved):
    with pytest.raises(StateFileError, match="'square', not 'stack_three'"):
        load_initial_states(saved[0], task="stack_three")


def test_missing_folder(tmp_path):
    with pytest.raises(StateFileError, match="make_initial_states.py"):
        load_initial_states(tmp_path / "nothing")


def test_corrupt_states_file(saved, tmp_path):
    folder = tmp_path / "square"
    folder.mkdir()
    (folder / "meta.json").write_text((saved[0] / "meta.json").read_text())
    (folder / "states.npz").write_bytes((saved[0] / "states.npz").read_bytes()[:200])
    with pytest.raises(StateFileError, match="states.npz is corrupt"):
        load_initial_states(folder)


def test_count_mismatch(saved, tmp_path):
    folder = tmp_path / "square"
    folder.mkdir()
    meta = json.loads((saved[0] / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "count": 3}))
    (folder / "states.npz").write_bytes((saved[0] / "states.npz").read_bytes())
    with pytest.raises(StateFileError, match="do not match meta.json"):
        load_initial_states(folder)


def test_state_of_other_task_is_rejected(square_env, stack_env):
    np.random.seed(0)
    stack_env.reset()
    foreign = stack_env.get_state()
    with pytest.raises(StateError, match="different task or backend"):
        square_env.reset_to({"model": None, "states": foreign["states"]})
    with pytest.raises(StateError, match="must be a dict"):
        square_env.reset_to(foreign["states"])


def test_script_writes_states_and_pngs(tmp_path):
    out = tmp_path / "sq"
    run = subprocess.run(
        [sys.executable, "scripts/make_initial_states.py", "task=square", "n=2", f"out={out}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(p.name for p in (out / "frames").iterdir()) == ["0000.png", "0001.png"]
    assert len(load_initial_states(out, task="square")) == 2
