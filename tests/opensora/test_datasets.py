import io
import tarfile

import numpy as np
import pytest
import torch

from opensora.datasets.shards import Episode, ShardError, index_episodes, iter_episodes, write_shards
from opensora.datasets.windows import ResumableBatchSampler, WindowDataset, load_action_bounds, normalize_actions


def numbered_episode(key: str, steps: int, padded_frames: int = 0) -> Episode:
    """Frame k is filled with the value k, action k with k + dimension/10: windows can be checked by value."""
    frames = steps + 1 + padded_frames
    video = np.broadcast_to(np.arange(frames, dtype=np.uint8)[:, None, None, None], (frames, 8, 8, 3)).copy()
    actions = (np.arange(steps + padded_frames)[:, None] + np.arange(7)[None] / 10).astype(np.float32)
    return Episode(key, video, actions, {"finish_step": steps, "complete": True})


def test_shards_round_trip_and_split_by_size(tmp_path):
    episodes = [numbered_episode(f"ep{i}", 10 + i) for i in range(4)]
    paths = write_shards(episodes, tmp_path, max_shard_bytes=2000)
    assert len(paths) > 1
    loaded = list(iter_episodes(tmp_path))
    assert [e.key for e in loaded] == [e.key for e in episodes]
    for original, back in zip(episodes, loaded):
        assert np.array_equal(original.video, back.video) and np.array_equal(original.actions, back.actions)
        assert back.meta == {"finish_step": original.meta["finish_step"], "complete": True}


def test_windows_pad_with_frame_zero_pair_actions_and_stop_at_finish_step(tmp_path):
    write_shards([numbered_episode("ep", steps=10, padded_frames=5)], tmp_path)
    q01, q99 = np.zeros(7, np.float32), np.full(7, 20.0, np.float32)
    dataset = WindowDataset(index_episodes(tmp_path), q01, q99)
    assert len(dataset) == 3  # starts 0, 1, 2: the last target frame is finish_step = 10
    video, actions = dataset.frames(0)
    assert video[:, 0, 0, 0].tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert actions[:, 0].tolist() == list(range(8))  # target frame k+1 comes from action k
    video, actions = dataset.frames(2)
    assert video[:, 0, 0, 0].tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    item = dataset[2]
    assert item["video"].shape == (3, 12, 8, 8)
    frame_values = torch.tensor([0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], dtype=torch.float32)
    torch.testing.assert_close(item["video"][0, :, 0, 0], frame_values / 127.5 - 1)
    expected = 2 * (actions - q01) / (q99 - q01) - 1
    torch.testing.assert_close(item["actions"], torch.from_numpy(expected))


def test_action_normalization_is_unclipped_on_all_dims(tmp_path):
    q01, q99 = np.array([-1.0] * 6 + [0.0], np.float32), np.array([1.0] * 6 + [2.0], np.float32)
    out = normalize_actions(np.array([[3.0, 0, 0, 0, 0, 0, 2.0]], np.float32), q01, q99)
    assert out[0, 0] == 3.0 and out[0, 6] == 1.0
    stats = tmp_path / "dataset_statistics.json"
    stats.write_text('{"square_d0_300_demos": {"action": {"q01": [0,0,0,0,0,0,0], "q99": [1,1,1,1,1,1,1]}}}')
    low, high = load_action_bounds(stats)
    assert low.tolist() == [0] * 7 and high.tolist() == [1] * 7


def test_malformed_shards_fail_naming_the_episode(tmp_path):
    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        info = tarfile.TarInfo("ep7.meta.json")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"{}"))
    with pytest.raises(ShardError, match="ep7 lacks action.npy, video.npy"):
        index_episodes(tmp_path)
    with pytest.raises(FileNotFoundError, match="no episode shards"):
        index_episodes(tmp_path / "nothing")


def test_sampler_resumes_exactly_and_splits_ranks():
    def take(sampler, count):
        iterator = iter(sampler)
        return [next(iterator) for _ in range(count)]

    full = take(ResumableBatchSampler(50, 4, seed=3), 20)  # crosses an epoch boundary (12 batches per epoch)
    epoch, batch = ResumableBatchSampler.position(7, 12)
    resumed = take(ResumableBatchSampler(50, 4, seed=3, epoch=epoch, batch_in_epoch=batch), 13)
    assert resumed == full[7:]
    ranks = [take(ResumableBatchSampler(50, 4, seed=3, rank=r, world_size=2), 6) for r in (0, 1)]
    seen = [i for batches in ranks for b in batches for i in b]
    assert len(seen) == len(set(seen)) == 48
