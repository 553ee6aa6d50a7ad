import math

import numpy as np
import pytest
import torch

from wmpo.policy.processing import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PromptTokenizer,
    center_crop_resize,
    crop_and_resize,
    preprocess_images,
)
from wmpo.policy.tiny import build_tiny_tokenizer


def tf_crop_and_resize_reference(image: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """TensorFlow's crop_and_resize kernel written out per output pixel (bilinear, box corners sampled)."""
    y1, x1, y2, x2 = box
    height, width = image.shape[:2]
    out = np.zeros((size, size, image.shape[2]))
    for oy in range(size):
        in_y = y1 * (height - 1) + oy * (y2 - y1) * (height - 1) / (size - 1)
        top, bottom = math.floor(in_y), math.ceil(in_y)
        y_lerp = in_y - top
        for ox in range(size):
            in_x = x1 * (width - 1) + ox * (x2 - x1) * (width - 1) / (size - 1)
            left, right = math.floor(in_x), math.ceil(in_x)
            x_lerp = in_x - left
            top_row = image[top, left] + (image[top, right] - image[top, left]) * x_lerp
            bottom_row = image[bottom, left] + (image[bottom, right] - image[bottom, left]) * x_lerp
            out[oy, ox] = top_row + (bottom_row - top_row) * y_lerp
    return out


def test_crop_matches_the_tensorflow_kernel_formula():
    rng = np.random.default_rng(1)
    image = rng.random((37, 29, 3))
    side = math.sqrt(0.9)
    offset = (1 - side) / 2
    expected = tf_crop_and_resize_reference(image, (offset, offset, offset + side, offset + side), 11)
    got = crop_and_resize(torch.tensor(image[None], dtype=torch.float32), size=11, crop_area=0.9)[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_uint8_crop_quantizes_like_convert_image_dtype():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(2, 256, 256, 3), dtype=np.uint8)
    out = center_crop_resize(torch.from_numpy(images)).numpy()
    assert out.shape == (2, 224, 224, 3) and out.dtype == np.uint8
    side = math.sqrt(0.9)
    offset = (1 - side) / 2
    box = (offset, offset, offset + side, offset + side)
    # A few rows through the reference kernel (it is slow in pure Python).
    reference = tf_crop_and_resize_reference(images[0, :, :, :1] / 255.0, box, 224)
    expected = np.minimum(np.floor(np.clip(reference, 0, 1) * 255.5), 255)[..., 0]
    mismatch = np.abs(out[0, :, :, 0].astype(int) - expected.astype(int))
    assert mismatch.max() <= 1 and (mismatch == 0).mean() > 0.999


def test_constant_image_survives_crop_and_two_normalizations():
    images = np.full((1, 256, 256, 3), 200, dtype=np.uint8)
    pixels = preprocess_images(images)
    assert pixels.shape == (1, 6, 224, 224)
    for channel in range(3):
        dino = (200 / 255 - IMAGENET_MEAN[channel]) / IMAGENET_STD[channel]
        torch.testing.assert_close(pixels[0, channel], torch.full((224, 224), dino), atol=1e-5, rtol=0)
        torch.testing.assert_close(pixels[0, 3 + channel], torch.full((224, 224), (200 / 255 - 0.5) / 0.5))


def test_center_crop_discards_the_border():
    images = np.zeros((1, 256, 256, 3), dtype=np.uint8)
    images[:, :6] = 255  # a white band thinner than the cropped margin (≈6.6 px)
    assert center_crop_resize(torch.from_numpy(images)).max() == 0


def test_bad_image_batches_fail():
    with pytest.raises(ValueError, match="uint8"):
        center_crop_resize(torch.zeros((1, 64, 64, 3)))
    with pytest.raises(ValueError, match="224x224"):
        preprocess_images(np.zeros((1, 64, 64, 3), dtype=np.uint8), center_crop=False)


def test_prompts_are_formatted_lowercased_and_left_padded():
    tokenizer = build_tiny_tokenizer()
    prompts = PromptTokenizer(tokenizer, pad_token_id=512)
    batch = prompts(["Stack_Three", "insert the square into the stick"])
    long_ids = prompts.encode("insert the square into the stick")
    short_ids = prompts.encode("Stack_Three")
    text = tokenizer.decode(short_ids, skip_special_tokens=True)
    assert text.strip() == "In: What action should the robot take to stack_three?\nOut:"
    space = tokenizer.convert_tokens_to_ids("▁")
    assert short_ids[0] == tokenizer.bos_token_id and short_ids[-1] == space and short_ids[-2] != space
    assert batch["input_ids"].shape == (2, len(long_ids))
    pad = len(long_ids) - len(short_ids)
    assert batch["attention_mask"][0, :pad].sum() == 0 and batch["attention_mask"][0, pad:].all()
    assert batch["input_ids"][0, :pad].eq(512).all()
    assert batch["input_ids"][0, pad:].tolist() == short_ids
