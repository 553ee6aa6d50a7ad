import json
import math
from pathlib import Path

import pytest
import torch

from opensora.models.layers import PositionEmbedding2D, RotaryEmbedding
from opensora.models.stdit3 import STDiT3, preset

MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "stdit3_xl2_action.json"
MASK = torch.tensor([[False] * 4 + [True] * 8] * 2)


def test_xl2_on_meta_device_matches_the_released_manifest_exactly():
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        model = STDiT3(preset("XL/2"))
    shapes = {name: list(t.shape) for name, t in model.state_dict().items()}
    assert shapes == manifest["tensors"]
    total = sum(t.numel() for t in model.state_dict().values())
    params = sum(p.numel() for p in model.parameters())
    print(f"STDiT3-XL/2: {params / 1e9:.3f} G parameters, {total:,} elements with buffers")
    assert total == manifest["num_elements"] and round(params / 1e9, 3) == 1.213


def inputs(seed=0, batch=2, size=8):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 4, 12, size, size, generator=g)
    actions = torch.rand(batch, 8, 7, generator=g) * 2 - 1
    return x, torch.tensor([500.0, 900.0])[:batch], actions


def test_cached_context_equals_plain_forward(tiny_model):
    x, t, actions = inputs()
    with torch.no_grad():
        plain = tiny_model(x, t, actions, MASK)
        cached = tiny_model.forward_targets(x[:, :, 4:], t, actions, tiny_model.encode_context(x[:, :, :4]))
    assert cached.shape == (2, 8, 8, 8, 8)
    assert (plain[:, :, 4:] - cached).abs().max() <= 1e-5


def test_temporal_attention_is_causal(tiny_model):
    x, t, actions = inputs()
    changed = x.clone()
    changed[:, :, 7] += 1.0
    with torch.no_grad():
        before, after = tiny_model(x, t, actions, MASK), tiny_model(changed, t, actions, MASK)
    assert torch.equal(before[:, :, :7], after[:, :, :7])
    assert (before[:, :, 8:] - after[:, :, 8:]).abs().max() > 1e-4


def test_context_frames_ignore_timestep_and_actions(tiny_model):
    x, t, actions = inputs()
    with torch.no_grad():
        a = tiny_model(x, t, actions, MASK)
        b = tiny_model(x, torch.tensor([10.0, 20.0]), -actions, MASK)
    assert torch.equal(a[:, :, :4], b[:, :, :4])
    assert (a[:, :, 4:] - b[:, :, 4:]).abs().max() > 1e-4


def test_each_action_conditions_its_own_frame_and_later_ones(tiny_model):
    x, t, actions = inputs()
    changed = actions.clone()
    changed[:, 3] += 0.5  # the action of target frame 3 = latent frame 7
    with torch.no_grad():
        a, b = tiny_model(x, t, actions, MASK), tiny_model(x, t, changed, MASK)
    assert torch.equal(a[:, :, :7], b[:, :, :7])
    assert (a[:, :, 7] - b[:, :, 7]).abs().max() > 1e-4


def test_spatial_positions_put_the_column_first():
    dim = 16
    emb = PositionEmbedding2D(dim)(height=4, width=4, scale=0.5, base_size=4)
    freqs = [10000 ** (-2 * k / (dim // 2)) for k in range(dim // 4)]

    def sin_cos(v):
        return [math.sin(v * f) for f in freqs] + [math.cos(v * f) for f in freqs]

    row, col = 1, 3  # token index row·4 + col; coordinates are index / scale · (base / n) = 2·index
    expected = torch.tensor(sin_cos(2 * col) + sin_cos(2 * row))
    torch.testing.assert_close(emb[row * 4 + col], expected)


def test_rotary_rotates_adjacent_pairs():
    rope = RotaryEmbedding(4)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]] * 3)
    out = RotaryEmbedding.rotate(x, rope.angles(3, offset=0))
    position, freqs = 2, [1.0, 10000 ** (-2 / 4)]
    expected = []
    for (a, b), f in zip(((1.0, 2.0), (3.0, 4.0)), freqs):
        c, s = math.cos(position * f), math.sin(position * f)
        expected += [a * c - b * s, b * c + a * s]
    torch.testing.assert_close(out[2], torch.tensor(expected))
    torch.testing.assert_close(out[0], x[0])


def test_unpatchify_puts_channels_fastest(tiny_model):
    tokens = torch.arange(1 * 1 * 4 * 32, dtype=torch.float32).reshape(1, 1, 4, 32)
    video = tiny_model._unpatchify(tokens, height=4, width=4)
    assert video.shape == (1, 8, 1, 4, 4)
    # token (row 0, col 1) holds patch pixel (ph, pw) channel c at feature (ph·2 + pw)·8 + c
    assert video[0, 5, 0, 1, 3] == tokens[0, 0, 1, (1 * 2 + 1) * 8 + 5]


def test_action_count_must_fill_the_frames(tiny_model):
    x, t, actions = inputs()
    with pytest.raises(ValueError, match="7 actions"):
        tiny_model(x, t, actions[:, :7], MASK)
