import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(skip_gpu)


def policy_episodes(policy, prompt: str, specs: list[tuple[int, bool, int]], seed: int = 0):
    """Recorded episodes whose actions the policy sampled (temperature 1) on random frames, one per
    (state_id, complete, finish_step) spec: (episodes, the sampled token ids (chunks, 56) of each)."""
    import numpy as np
    import torch

    from opensora.datasets.shards import Episode

    rng = np.random.default_rng(seed)
    episodes, tokens = [], []
    for number, (state_id, complete, steps) in enumerate(specs):
        chunks = -(-steps // 8)
        frames = rng.integers(0, 256, (chunks * 8 + 1, 64, 64, 3), dtype=np.uint8)
        generator = torch.Generator().manual_seed(seed * 1000 + number)
        out = policy.predict(frames[0 : chunks * 8 : 8], [prompt] * chunks, do_sample=True, temperature=1.0,
                             generator=generator)
        actions = np.asarray(out.actions, dtype=np.float32).reshape(chunks * 8, 7)
        meta = {"finish_step": steps, "complete": complete, "state_id": state_id}
        episodes.append(Episode(f"e{number:03d}", frames[: steps + 1], actions[:steps], meta))
        tokens.append(out.responses.reshape(chunks, 56))
    return episodes, tokens


@pytest.fixture(scope="session")
def make_policy_episodes():
    return policy_episodes
