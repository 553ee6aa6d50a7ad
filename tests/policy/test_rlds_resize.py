import io

import numpy as np
import pytest
import torch
from PIL import Image

from wmpo.policy.rlds_resize import jpeg_roundtrip, lanczos_matrix, lanczos_resize, rlds_resize


def smooth_frame(size: int = 256) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    planes = [127 + 100 * np.sin(xx / 23.0 + k) * np.cos(yy / 31.0 - k) for k in range(3)]
    return np.stack(planes, -1).astype(np.uint8)


def noise_frame(size: int = 256) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)


def pil_jpeg(image: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=95)  # 4:2:0 chroma subsampling, as TensorFlow's encoder
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def pil_lanczos_float(image: np.ndarray, size: int) -> np.ndarray:
    """PIL's antialiased lanczos3 on float planes (no rounding between the two passes), rounded and clipped."""
    planes = [Image.fromarray(image[..., c].astype(np.float32), "F").resize((size, size), Image.LANCZOS)
              for c in range(3)]
    return np.clip(np.round(np.stack([np.asarray(p) for p in planes], -1)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("frame", [smooth_frame(), noise_frame()], ids=["smooth", "noise"])
def test_jpeg_round_trip_equals_libjpeg_through_pil(frame):
    ours = jpeg_roundtrip(torch.from_numpy(frame)[None])[0].numpy()
    np.testing.assert_array_equal(ours, pil_jpeg(frame))
    assert np.abs(ours.astype(int) - frame.astype(int)).max() > 0  # it is lossy, not a copy


@pytest.mark.parametrize("size", [224, 64, 300])
def test_lanczos_resize_equals_a_float_lanczos3_reference(size):
    frame = noise_frame()
    ours = lanczos_resize(torch.from_numpy(frame)[None], size)[0].numpy()
    np.testing.assert_array_equal(ours, pil_lanczos_float(frame, size))


def test_the_whole_resize_against_pil_uint8_pipeline():
    # PIL's 8-bit resize rounds and clips between its horizontal and vertical passes; on smooth frames that changes
    # at most one level, on pixel noise (strong lanczos overshoot) rarely more.
    for frame, mean_tol, max_tol in ((smooth_frame(), 0.25, 1), (noise_frame(), 0.3, 32)):
        ours = rlds_resize(torch.from_numpy(frame)[None], 224)[0].numpy().astype(int)
        reference = np.asarray(Image.fromarray(pil_jpeg(frame)).resize((224, 224), Image.LANCZOS)).astype(int)
        difference = np.abs(ours - reference)
        assert difference.mean() <= mean_tol and difference.max() <= max_tol, (difference.mean(), difference.max())


def test_lanczos_weights_are_normalized_and_identity_at_equal_size():
    weights = lanczos_matrix(256, 224)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(224))
    torch.testing.assert_close(lanczos_matrix(64, 64), torch.eye(64), atol=1e-6, rtol=0)
    batch = torch.from_numpy(np.stack([smooth_frame(64), noise_frame(64)]))
    assert torch.equal(lanczos_resize(batch, 64), batch)


def test_batches_are_processed_frame_by_frame():
    batch = torch.from_numpy(np.stack([smooth_frame(), noise_frame()]))
    together = rlds_resize(batch, 224)
    assert together.shape == (2, 224, 224, 3) and together.dtype == torch.uint8
    for row in range(2):
        assert torch.equal(together[row], rlds_resize(batch[row : row + 1], 224)[0])


def test_rejects_frames_that_are_not_uint8_rgb():
    with pytest.raises(ValueError, match="uint8"):
        rlds_resize(torch.zeros(1, 8, 8, 3), 4)


@pytest.mark.gpu
def test_cuda_resize_stays_on_the_gpu_and_near_the_cpu_codec():
    batch = torch.from_numpy(np.stack([smooth_frame(), noise_frame()]))
    gpu = rlds_resize(batch.cuda(), 224)
    assert gpu.device.type == "cuda" and gpu.shape == (2, 224, 224, 3)
    difference = (gpu.cpu().int() - rlds_resize(batch, 224).int()).abs()
    # nvJPEG and libjpeg differ in their DCT rounding by a level or so.
    assert difference[0].float().mean() <= 1.0, difference[0].float().mean()
