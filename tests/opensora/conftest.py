import pytest
import torch

from opensora.models.stdit3 import STDiT3, preset


def _perturb(model: STDiT3, std: float = 0.1) -> STDiT3:
    """Temporal blocks start as the identity; give them weights so that frames actually interact."""
    with torch.no_grad():
        for block in model.temporal_blocks:
            block.attn.proj.weight.normal_(std=std)
            block.mlp.fc2.weight.normal_(std=std)
    return model


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return _perturb(STDiT3(preset("tiny"))).eval()


@pytest.fixture(scope="session")
def perturb_temporal_blocks():
    return _perturb
