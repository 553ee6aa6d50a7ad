import pytest

from opensora.training.schedule import lr_factor


def test_learning_rate_warms_up_then_stays_or_decays_to_zero():
    assert [lr_factor(s, 3, 10, "constant") for s in (0, 2, 3, 9)] == [0.25, 0.75, 1.0, 1.0]
    cosine = [lr_factor(s, 3, 11, "cosine") for s in range(3, 12)]
    assert cosine[0] == 1.0 and cosine[4] == pytest.approx(0.5) and cosine[-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(cosine, cosine[1:]))
