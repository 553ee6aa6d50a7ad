import json
import sys
from pathlib import Path

import h5py
import numpy as np

from opensora.datasets.shards import index_episodes, iter_episodes, write_shards
from wmpo.data.robomimic import read_demos
from wmpo.data.statistics import action_statistics

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import compute_statistics  # noqa: E402


def write_robomimic(path: Path, rng: np.random.Generator) -> dict:
    """Two demos in the robomimic layout; demo_1 lacks next_obs. Frame t is filled with value t (row 0 brighter)."""
    demos = {}
    with h5py.File(path, "w") as handle:
        data = handle.create_group("data")
        for index, length in ((0, 6), (1, 4)):
            demo = data.create_group(f"demo_{index}")
            frames = np.zeros((length, 16, 16, 3), dtype=np.uint8)
            frames += np.arange(length, dtype=np.uint8)[:, None, None, None]
            frames[:, 0] += 100
            actions = rng.uniform(-1, 1, size=(length, 7)).astype(np.float32)
            demo.create_dataset("obs/agentview_image", data=frames)
            demo.create_dataset("actions", data=actions)
            demo.create_dataset("states", data=np.zeros((length, 10)))
            demo.attrs["model_file"] = "<mujoco/>"
            if index == 0:
                demo.create_dataset("next_obs/agentview_image", data=frames + 1)
            demos[f"demo_{index}"] = (frames, actions)
    return demos


def test_hdf5_to_shards_to_statistics_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    demos = write_robomimic(tmp_path / "demo.hdf5", rng)
    episodes = list(read_demos(tmp_path / "demo.hdf5", flip=True, size=None))
    frames0, actions0 = demos["demo_0"]
    assert episodes[0].meta["finish_step"] == 6 and episodes[0].video.shape[0] == 7
    assert np.array_equal(episodes[0].video[:6], frames0[:, ::-1])  # flipped: the bright row is now the last
    assert episodes[0].video[6, -1, 0, 0] == 100 + 5 + 1  # next_obs of the last action
    frames1, actions1 = demos["demo_1"]
    assert episodes[1].meta["finish_step"] == 3 and np.array_equal(episodes[1].actions, actions1[:3])
    assert episodes[0].meta["model_file"] == "<mujoco/>"

    write_shards(episodes, tmp_path / "shards")
    back = list(iter_episodes(tmp_path / "shards"))
    assert [e.key for e in back] == ["demo_demo_0", "demo_demo_1"]
    assert all(np.array_equal(a.video, b.video) for a, b in zip(episodes, back))

    out = tmp_path / "stats.json"
    sys.argv = ["compute_statistics.py", f"shards=[{tmp_path / 'shards'}]", "key=square_d0_300_demos", f"output={out}"]
    compute_statistics.main()
    stats = json.loads(out.read_text())["square_d0_300_demos"]
    executed = np.concatenate([actions0, actions1[:3]]).astype(np.float64)
    np.testing.assert_allclose(stats["action"]["q01"], np.quantile(executed, 0.01, axis=0))
    np.testing.assert_allclose(stats["action"]["mean"], executed.mean(0))
    assert stats["action"]["mask"] == [True] * 6 + [False]
    assert (stats["num_transitions"], stats["num_trajectories"]) == (9, 2)


def test_resize_is_explicit_and_released_rollout_members_are_ignored(tmp_path):
    rng = np.random.default_rng(1)
    write_robomimic(tmp_path / "demo.hdf5", rng)
    episode = next(read_demos(tmp_path / "demo.hdf5", size=8))
    assert episode.video.shape[1:] == (8, 8, 3)
    # Rollout shards written by the released RL worker carry extra members; they are indexed without complaint.
    import io
    import tarfile

    write_shards([episode], tmp_path / "shards")
    shard = next((tmp_path / "shards").glob("*.tar"))
    with tarfile.open(shard, "a") as tar:
        payload = io.BytesIO()
        np.save(payload, np.zeros((1, 56), dtype=np.int64))
        info = tarfile.TarInfo(f"{episode.key}.responses.npy")
        info.size = payload.tell()
        payload.seek(0)
        tar.addfile(info, payload)
    (ref,) = index_episodes(tmp_path / "shards")
    assert ref.finish_step == episode.meta["finish_step"]
    stats = action_statistics([episode.actions])
    assert stats["num_trajectories"] == 1


def test_first_images_read_in_state_order(tmp_path):
    import imageio.v3 as iio
    import pytest

    from wmpo.data.first_images import load_first_images

    for state in (10, 2, 1):
        iio.imwrite(tmp_path / f"{state}.png", np.full((8, 8, 3), state, dtype=np.uint8))
    ids, frames = load_first_images(tmp_path)
    assert ids == [1, 2, 10] and frames[:, 0, 0, 0].tolist() == [1, 2, 10]
    with pytest.raises(FileNotFoundError, match="state_id"):
        load_first_images(tmp_path / "empty")
