import json
import pytest
import torch
from safetensors.torch import save_file

from opensora.checkpoint_io import WeightMismatchError, load_weights
from opensora.models.stdit3 import STDiT3, preset
from opensora.models.vae import FrameVAE, frames_to_video, video_to_frames
from opensora.world_model import WorldModel, WorldModelSpec


@pytest.fixture(scope="module")
def world_model(perturb_temporal_blocks):
    torch.manual_seed(0)
    wm = WorldModel.build(WorldModelSpec(model_preset="tiny", vae_preset="tiny", num_sampling_steps=3))
    perturb_temporal_blocks(wm.model)
    return wm


def rollout(wm, first, actions, seeds):
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    context = wm.initial_context(first, [torch.Generator().manual_seed(100 + s) for s in seeds])
    chunks = []
    for chunk_actions in actions:
        latents = wm.predict(context, chunk_actions, generators)
        chunks.append(wm.decode(latents))
        context = wm.next_context(context, latents)
    return torch.cat(chunks, dim=1)


def test_seeded_two_chunk_rollout_is_bit_identical_and_rows_are_independent(world_model):
    first = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    actions = torch.rand(2, 2, 8, 7) * 2 - 1
    video = rollout(world_model, first, actions, [1, 2])
    assert video.shape == (2, 16, 32, 32, 3) and video.dtype == torch.uint8
    assert torch.equal(rollout(world_model, first, actions, [1, 2]), video)
    # Alone, row 1 gets the same noise; only batched-kernel rounding may differ.
    alone = rollout(world_model, first[1:], actions[:, 1:], [2]).int()
    assert (alone - video[1:].int()).abs().max() <= 1
    assert not torch.equal(rollout(world_model, first, actions, [1, 3])[1], video[1])


def test_cached_and_plain_sampling_agree(world_model):
    context = torch.randn(2, 4, 4, 4, 4)
    actions = torch.rand(2, 8, 7)
    cached = world_model.predict(context, actions, [torch.Generator().manual_seed(s) for s in (5, 6)])
    world_model.spec.use_cache = False
    try:
        plain = world_model.predict(context, actions, [torch.Generator().manual_seed(s) for s in (5, 6)])
    finally:
        world_model.spec.use_cache = True
    assert (cached - plain).abs().max() <= 1e-5


def test_pixel_conversions_round_trip():
    frames = torch.randint(0, 256, (1, 3, 4, 4, 3), dtype=torch.uint8)
    video = frames_to_video(frames)
    assert video.shape == (1, 3, 3, 4, 4) and video.min() >= -1 and video.max() <= 1
    assert torch.equal(video_to_frames(video + 1e-4), frames)


def test_vae_is_per_frame_with_micro_batches():
    torch.manual_seed(0)
    vae = FrameVAE.from_config("tiny", micro_batch_size=2).eval()
    video = torch.rand(2, 3, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(video, sample=False)
        single = vae.encode(video[:1, :, 2:3], sample=False)
        decoded = vae.decode(latents)
    assert latents.shape == (2, 4, 3, 4, 4) and decoded.shape == video.shape
    torch.testing.assert_close(latents[:1, :, 2:3], single, atol=1e-5, rtol=0)


def test_vae_loads_from_a_diffusers_folder(tmp_path):
    torch.manual_seed(0)
    vae = FrameVAE.from_config("tiny")
    vae.module.save_pretrained(tmp_path / "vae")
    loaded = FrameVAE.from_pretrained(tmp_path / "vae")
    video = torch.rand(1, 3, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode(video, sample=False), vae.encode(video, sample=False))
    assert loaded.scaling_factor == 0.13025
    with pytest.raises(FileNotFoundError, match="not a diffusers VAE folder"):
        FrameVAE.from_pretrained(tmp_path)


def test_weights_load_from_ema_pt_safetensors_and_sharded_dir(tmp_path):
    torch.manual_seed(1)
    source = STDiT3(preset("tiny"))
    state = source.state_dict()
    torch.save({**state, "pos_embed.inv_freq": torch.zeros(3)}, tmp_path / "ema.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "model.safetensors"))
    shard_dir = tmp_path / "model"
    shard_dir.mkdir()
    names = sorted(state)
    halves = {"a.safetensors": names[: len(names) // 2], "b.safetensors": names[len(names) // 2 :]}
    for file, keys in halves.items():
        save_file({k: state[k].contiguous() for k in keys}, str(shard_dir / file))
    weight_map = {k: f for f, keys in halves.items() for k in keys}


    (shard_dir / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    for path in (tmp_path / "ema.pt", tmp_path / "model.safetensors", shard_dir):
        target = STDiT3(preset("tiny"))
        load_weights(target, path)
        assert all(torch.equal(target.state_dict()[k], v) for k, v in state.items())

    broken = dict(state)
    broken["t_block.1.kernel"] = broken.pop("t_block.1.weight")
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(WeightMismatchError, match=r"missing keys \(1\):\s+t_block.1.weight"):
        load_weights(STDiT3(preset("tiny")), tmp_path / "broken.pt")


@pytest.mark.slow
def test_compiled_denoiser_matches_eager_and_sees_reloaded_weights(world_model):
    compiled = WorldModel(world_model.model, world_model.vae, world_model.scheduler,
                          WorldModelSpec(model_preset="tiny", vae_preset="tiny", num_sampling_steps=3, compile="default"))
    context = torch.randn(2, world_model.vae.latent_channels, 4, 4, 4)
    actions = torch.rand(2, 8, 7) * 2 - 1

    def both() -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(wm.predict(context, actions, [torch.Generator().manual_seed(s) for s in (1, 2)])
                     for wm in (world_model, compiled))

    eager, fast = both()
    assert torch.allclose(fast, eager, atol=1e-5)
    saved = {k: v.clone() for k, v in world_model.model.state_dict().items()}
    try:
        with torch.no_grad():
            for parameter in world_model.model.final_layer.parameters():
                parameter.add_(0.5)
        eager_after, fast_after = both()
        assert not torch.allclose(eager_after, eager, atol=1e-3)
        assert torch.allclose(fast_after, eager_after, atol=1e-5)
    finally:
        world_model.model.load_state_dict(saved)


def test_unknown_compile_mode_is_refused(world_model):
    with pytest.raises(ValueError, match="compile='fast'"):
        WorldModel(world_model.model, world_model.vae, world_model.scheduler, WorldModelSpec(compile="fast"))
