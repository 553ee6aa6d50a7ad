import numpy as np
import pytest

from wmpo.policy import load_policy
from wmpo.policy.tiny import write_tiny_checkpoint

SQUARE_KEY = "square_d0_300_demos"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny_policy"), seed=0)


@pytest.fixture(scope="session")
def tiny_policy(tiny_dir):
    return load_policy(tiny_dir, SQUARE_KEY)


@pytest.fixture
def frames():
    return np.random.default_rng(0).integers(0, 256, size=(3, 256, 256, 3), dtype=np.uint8)
