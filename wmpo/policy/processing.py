"""Observation → policy inputs: the center crop, the two normalized image copies, and the prompt tokens.

The crop reproduces the image pipeline the released policies were trained and evaluated with: TensorFlow's
``crop_and_resize`` of a centered box keeping 0.9 of the area (bilinear, sample points spanning the box corners,
no antialiasing), clipped and quantized back to uint8 as ``tf.image.convert_image_dtype`` does, then normalized once
with the DINOv2 (ImageNet) statistics and once with the SigLIP ones (mean = std = 0.5). Everything is batched torch,
so it runs where the images are (CPU or GPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
PROMPT_TEMPLATE = "In: What action should the robot take to {}?\nOut:"


def check_frames(images: torch.Tensor) -> None:
    """Raise unless ``images`` are camera frames: uint8 (B, H, W, 3)."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (B, H, W, 3), got {tuple(images.shape)} {images.dtype}")


def _crop_box(crop_area: float) -> tuple[np.float32, np.float32]:
    """Start and end of the centered box as fractions, computed in float32 as the TensorFlow pipeline does."""
    side = np.clip(np.sqrt(np.float32(crop_area)), np.float32(0), np.float32(1))
    start = (np.float32(1) - side) / np.float32(2)
    return start, start + side


def _resize_matrix(in_size: int, out_size: int, start: np.float32, end: np.float32) -> torch.Tensor:
    """(out_size, in_size) bilinear weights sampling ``[start, end]`` (fractions of in_size−1)."""
    scale = (end - start) * np.float32(in_size - 1) / np.float32(out_size - 1)
    coords = start * np.float32(in_size - 1) + np.arange(out_size, dtype=np.float32) * scale
    low = np.floor(coords).astype(np.int64)
    high = np.minimum(np.ceil(coords).astype(np.int64), in_size - 1)
    frac = coords - low
    weights = np.zeros((out_size, in_size), dtype=np.float32)
    rows = np.arange(out_size)
    np.add.at(weights, (rows, low), 1.0 - frac)
    np.add.at(weights, (rows, high), frac)
    return torch.from_numpy(weights)


def crop_and_resize(pixels: torch.Tensor, size: int = 224, crop_area: float = 0.9) -> torch.Tensor:
    """float (B, H, W, C) → float (B, size, size, C): bilinear samples of the centered box keeping ``crop_area``."""
    start, end = _crop_box(crop_area)
    height, width = pixels.shape[1:3]
    rows = _resize_matrix(height, size, start, end).to(pixels.device)
    cols = _resize_matrix(width, size, start, end).to(pixels.device)
    return torch.einsum("oh,bhwc,pw->bopc", rows, pixels, cols)


def random_crop_resize(
    images: torch.Tensor, size: int, crop_area: float = 0.9, generator: torch.Generator | None = None
) -> torch.Tensor:
    """uint8 (B, H, W, 3) → uint8 (B, size, size, 3): train-time augmentation of OpenVLA-OFT, a square box keeping
    ``crop_area`` of the image at a uniformly random position, resampled like :func:`center_crop_resize`."""
    check_frames(images)
    start, end = _crop_box(crop_area)
    side = end - start
    offsets = torch.rand(images.shape[0], 2, generator=generator, dtype=torch.float64).numpy()
    height, width = images.shape[1:3]
    rows, cols = [], []
    for dy, dx in offsets.astype(np.float32) * (np.float32(1) - side):
        rows.append(_resize_matrix(height, size, dy, dy + side))
        cols.append(_resize_matrix(width, size, dx, dx + side))
    pixels = images.float() / 255.0
    rows_t, cols_t = torch.stack(rows).to(pixels.device), torch.stack(cols).to(pixels.device)
    resized = torch.einsum("boh,bhwc,bpw->bopc", rows_t, pixels, cols_t)
    return _to_uint8(resized)


def _to_uint8(resized: torch.Tensor) -> torch.Tensor:
    # convert_image_dtype(float → uint8, saturate=True) scales by 255.5 and truncates.
    return torch.floor(resized.clamp(0.0, 1.0) * 255.5).clamp(max=255.0).to(torch.uint8)


def center_crop_resize(images: torch.Tensor, size: int = 224, crop_area: float = 0.9) -> torch.Tensor:
    """uint8 (B, H, W, 3) → uint8 (B, size, size, 3): the crop of the released evaluation and rollout code."""
    check_frames(images)
    return _to_uint8(crop_and_resize(images.float() / 255.0, size, crop_area))


def normalize_two_copies(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, 3) → float32 (B, 6, H, W): DINOv2-normalized channels, then SigLIP-normalized channels."""
    pixels = images.permute(0, 3, 1, 2).float() / 255.0
    copies = []
    for mean, std in ((IMAGENET_MEAN, IMAGENET_STD), (SIGLIP_MEAN, SIGLIP_STD)):
        mean_t = torch.tensor(mean, device=pixels.device).view(1, 3, 1, 1)
        std_t = torch.tensor(std, device=pixels.device).view(1, 3, 1, 1)
        copies.append((pixels - mean_t) / std_t)
    return torch.cat(copies, dim=1)


def preprocess_images(
    images: np.ndarray | torch.Tensor, size: int = 224, center_crop: bool = True, device: str | torch.device = "cpu"
) -> torch.Tensor:
    """Camera frames uint8 (B, H, W, 3) → pixel_values float32 (B, 6, size, size) on ``device``."""
    if not isinstance(images, torch.Tensor):
        # Arrays that arrive through Ray are read-only views; torch wants writable memory.
        images = np.require(images, requirements="W")
    batch = torch.as_tensor(images).to(device)
    if center_crop:
        batch = center_crop_resize(batch, size)
    elif batch.shape[1:3] != (size, size):
        raise ValueError(f"without center_crop the images must already be {size}x{size}, got {tuple(batch.shape)}")
    return normalize_two_copies(batch)


def build_prompt(instruction: str) -> str:
    """The OpenVLA prompt for one instruction (lower-cased, no system prompt)."""
    return PROMPT_TEMPLATE.format(instruction.lower())


class PromptTokenizer:
    """Prompts → left-padded ``input_ids`` / ``attention_mask`` ending with the empty-word token ("▁", 29871)."""

    def __init__(self, tokenizer, pad_token_id: int) -> None:
        self.tokenizer = tokenizer
        self.pad_token_id = pad_token_id
        self.space_token_id = tokenizer.convert_tokens_to_ids("▁")
        if self.space_token_id is None or self.space_token_id == tokenizer.unk_token_id:
            raise ValueError("the policy tokenizer has no '▁' token (Llama id 29871) to end prompts with")
        self._cache: dict[str, list[int]] = {}

    def encode(self, instruction: str) -> list[int]:
        """Token ids of one prompt, BOS first, "▁" last."""
        if instruction not in self._cache:
            ids = list(self.tokenizer(build_prompt(instruction))["input_ids"])
            if ids[0] != self.tokenizer.bos_token_id:
                raise ValueError(
                    f"the policy tokenizer did not start the prompt with BOS (id {self.tokenizer.bos_token_id}); "
                    "the visual tokens are inserted after it"
                )
            if ids[-1] != self.space_token_id:
                ids.append(self.space_token_id)
            self._cache[instruction] = ids
        return self._cache[instruction]

    def __call__(self, instructions: Sequence[str], device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        encoded = [self.encode(text) for text in instructions]
        length = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(encoded), length), dtype=torch.long)
        for row, ids in enumerate(encoded):
            input_ids[row, length - len(ids) :] = torch.tensor(ids)
            attention_mask[row, length - len(ids) :] = 1
        return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
