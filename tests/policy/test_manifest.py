import json
from pathlib import Path

import torch

from wmpo.policy import OpenVLAForActionPrediction, preset
from opensora.checkpoint_io import mismatch_report
from wmpo.policy.checkpoint import model_shapes

MANIFEST = Path(__file__).resolve().parents[1] / "fixtures" / "manifests" / "openvla_oft_7b.json"


def test_7b_on_meta_device_matches_the_released_manifest_exactly():
    manifest = json.loads(MANIFEST.read_text())
    with torch.device("meta"):
        model = OpenVLAForActionPrediction(preset("7b"))
    expected = {name: tuple(shape) for name, shape in manifest["tensors"].items()}
    missing, unexpected, mismatched = mismatch_report(expected, model_shapes(model))
    assert (missing, unexpected, mismatched) == ([], [], [])
    count = sum(p.numel() for p in model.parameters())
    print(f"7b policy parameters: {count:,} ({count / 1e9:.3f} G)")
    assert count == manifest["num_elements"]
