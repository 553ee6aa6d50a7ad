import numpy as np
import pytest
import torch

from opensora.models.patch_autoencoder import LinearPatchVAE, PatchAutoencoderError
from opensora.models.vae import build_vae, frames_to_video
from opensora.world_model import WorldModel, WorldModelSpec


def low_rank_frames(count: int, rank: int, factor: int = 8, size: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 frames whose every factor×factor block is a mix of ``rank`` fixed patterns (exactly, before rounding)."""
    rng = np.random.default_rng(seed)
    patterns = rng.uniform(-1, 1, (rank, factor, factor, 3))
    cells = size // factor
    weights = rng.uniform(-1, 1, (count, cells, cells, rank)) / rank
    blocks = 127.5 + 120.0 * np.einsum("nijr,rabc->niajbc", weights, patterns)
    return np.round(blocks.reshape(count, size, size, 3)).clip(0, 255).astype(np.uint8)


def test_fit_recovers_a_low_rank_block_space_and_scales_to_unit_variance():
    frames = low_rank_frames(64, rank=5)
    vae, summary = LinearPatchVAE.fit([frames[:32], frames[32:]], factor=8, channels=8)
    assert summary["frames"] == 64
    assert summary["explained_variance"] > 0.999
    video = frames_to_video(torch.from_numpy(frames)[None])
    latents = vae.encode(video)
    assert latents.shape == (1, 8, 64, 4, 4)
    assert float(latents.pow(2).mean()) == pytest.approx(1.0, rel=0.05)
    # Rounding to uint8 is the only thing outside the 5-dimensional block space.
    assert float((vae.decode(latents) - video).abs().max()) < 0.02
    torch.testing.assert_close(vae.basis.T @ vae.basis, torch.eye(8), atol=1e-5, rtol=0)


def test_too_few_components_lose_detail_that_more_components_keep():
    frames = low_rank_frames(64, rank=6)
    video = frames_to_video(torch.from_numpy(frames)[None])
    errors = {}
    for channels in (2, 6):
        vae, _ = LinearPatchVAE.fit([frames], factor=8, channels=channels)
        errors[channels] = float((vae.decode(vae.encode(video)) - video).pow(2).mean())
    assert errors[6] < errors[2] / 100


def test_save_load_round_trip_and_build_vae(tmp_path):
    frames = low_rank_frames(16, rank=4, factor=4, size=16)
    vae, summary = LinearPatchVAE.fit([frames], factor=4, channels=6)
    vae.save(tmp_path / "ae", **summary)
    loaded = build_vae("linear-patch", tmp_path / "ae")
    video = frames_to_video(torch.from_numpy(frames[:3])[None])
    torch.testing.assert_close(loaded.encode(video), vae.encode(video))
    assert (loaded.latent_channels, loaded.downsample) == (6, 4)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(PatchAutoencoderError, match="needs vae_path"):
        build_vae("linear-patch", None)
    with pytest.raises(PatchAutoencoderError, match=f"{tmp_path}: not a linear patch autoencoder"):
        LinearPatchVAE.load(tmp_path)
    with pytest.raises(PatchAutoencoderError, match="channels=200"):
        LinearPatchVAE.fit([low_rank_frames(4, 2)], factor=8, channels=200)
    with pytest.raises(PatchAutoencoderError, match="fewer than the 192 block dimensions"):
        LinearPatchVAE.fit([low_rank_frames(1, 2, size=8)], factor=8, channels=4)
    with pytest.raises(PatchAutoencoderError, match="do not split into 8x8 blocks"):
        LinearPatchVAE.fit([np.zeros((2, 12, 12, 3), np.uint8)], factor=8, channels=4)


def test_small_patch_world_model_imagines_over_the_fitted_autoencoder(tmp_path):
    frames = low_rank_frames(32, rank=12, size=64)
    vae, _ = LinearPatchVAE.fit([frames], factor=8, channels=32)
    vae.save(tmp_path / "ae")
    torch.manual_seed(0)
    wm = WorldModel.build(WorldModelSpec(model_preset="small-patch", vae_preset="linear-patch",
                                         vae_path=str(tmp_path / "ae"), num_sampling_steps=2))
    generator = [torch.Generator().manual_seed(0)]
    context = wm.initial_context(torch.from_numpy(frames[:1]), generator)
    latents = wm.predict(context, torch.zeros(1, 8, 7), generator)
    assert latents.shape == (1, 32, 8, 8, 8)
    assert wm.decode(latents).shape == (1, 8, 64, 64, 3)
