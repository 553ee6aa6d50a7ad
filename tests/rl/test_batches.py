import pickle

import pytest
import torch

from wmpo.distributed.dispatch import even_slices, split_rows
from wmpo.rollout.trajectories import Trajectories, concat_trajectories, new_trajectories


def trajectories(batch: int, chunks: int, seed: int, videos: bool = False) -> Trajectories:
    gen = torch.Generator().manual_seed(seed)
    return new_trajectories(
        frames=torch.randint(0, 255, (batch, chunks, 4, 4, 3), generator=gen, dtype=torch.uint8),
        input_ids=torch.randint(0, 9, (batch, 5), generator=gen),
        attention_mask=torch.ones(batch, 5, dtype=torch.long),
        responses=torch.randint(0, 9, (batch, chunks, 56), generator=gen),
        old_log_probs=-torch.rand(batch, chunks * 56, generator=gen),
        num_chunks=torch.full((batch,), chunks),
        complete=torch.rand(batch, generator=gen) > 0.5,
        finish_step=torch.full((batch,), chunks * 8),
        group=torch.arange(batch) // 2 + seed * 100,
        state_id=torch.arange(batch),
        videos=torch.zeros(batch, 1 + 8 * chunks, 4, 4, 3, dtype=torch.uint8) if videos else None,
        frame_scores=torch.rand(batch, 1 + 8 * chunks, generator=gen) if videos else None,
    )


@pytest.mark.parametrize("count,parts", [(10, 3), (2, 2), (7, 1), (3, 4)])
def test_even_slices_cover_the_rows_in_order(count, parts):
    slices = even_slices(count, parts)
    sizes = [s.stop - s.start for s in slices]
    assert len(slices) == parts and sum(sizes) == count and max(sizes) - min(sizes) <= 1
    assert [i for s in slices for i in range(s.start, s.stop)] == list(range(count))


def test_split_then_concat_gives_back_the_batch():
    batch = trajectories(6, 3, seed=1, videos=True)
    shards = split_rows(batch, 4)
    assert sorted(len(s) for s in shards) == [1, 1, 2, 2]
    joined = concat_trajectories(shards)
    for name in ("frames", "responses", "old_log_probs", "complete", "group", "videos", "frame_scores"):
        assert torch.equal(getattr(joined, name), getattr(batch, name)), name


def test_joining_batches_of_different_lengths_pads_the_chunk_dimensions():
    short, long = trajectories(2, 2, seed=1), trajectories(3, 5, seed=2)
    joined = concat_trajectories([short, long])
    assert joined.batch_size == torch.Size([5]) and joined.frames.shape[1] == 5
    assert joined.old_log_probs.shape == (5, 5 * 56)
    assert torch.equal(joined.responses[:2, :2], short.responses)
    assert not joined.responses[:2, 2:].any() and not joined.old_log_probs[:2, 2 * 56 :].any()
    assert torch.equal(joined.frames[2:], long.frames) and joined.videos is None


def test_a_batch_survives_pickling_and_selects_groups_by_mask():
    batch = trajectories(6, 2, seed=3)
    batch.advantages = torch.linspace(-1, 1, 6)
    copy = pickle.loads(pickle.dumps(batch))
    assert torch.equal(copy.advantages, batch.advantages) and torch.equal(copy.frames, batch.frames)
    group = copy[copy.group == 301]
    assert group.state_id.tolist() == [2, 3] and torch.equal(group.advantages, batch.advantages[2:4])


def test_an_optional_field_survives_joining_only_when_every_part_has_it():
    with_adv, without = trajectories(2, 2, seed=1), trajectories(2, 2, seed=2)
    with_adv.advantages = torch.ones(2)
    assert concat_trajectories([with_adv, without]).advantages is None
    without.advantages = torch.zeros(2)
    assert concat_trajectories([with_adv, without]).advantages.tolist() == [1.0, 1.0, 0.0, 0.0]
