"""Voxel patterns become merged boxes that fill exactly the marked cells."""

import numpy as np
import pytest

from wmpo.envs.builtin.voxels import pattern_boxes


def _cells(boxes, unit):
    """Centres of the unit cells the boxes cover, in units, from the boxes alone."""
    cells = set()
    for centre, half in boxes:
        lo = np.round((centre - half) / unit * 2) / 2
        hi = np.round((centre + half) / unit * 2) / 2
        for x in np.arange(lo[0] + 0.5, hi[0], 1.0):
            for y in np.arange(lo[1] + 0.5, hi[1], 1.0):
                for z in np.arange(lo[2] + 0.5, hi[2], 1.0):
                    cells.add((float(x), float(y), float(z)))
    return cells


def test_a_frame_merges_runs_and_leaves_its_hole_empty():
    layers = (("#####", "#...#", "#...#", "#...#", "#####"),)
    boxes = pattern_boxes(layers, unit=0.019)
    assert len(boxes) == 2 + 3 * 2  # two full rows, three rows of two end cells
    cells = _cells(boxes, 0.019)
    marked = {(i - 2.0, j - 2.0, 0.0) for j, row in enumerate(layers[0]) for i, c in enumerate(row) if c == "#"}
    assert cells == marked
    assert (0.0, 0.0, 0.0) not in cells
    assert sum(float(np.prod(2 * half)) for _, half in boxes) == pytest.approx(16 * 0.019 ** 3)


def test_layers_stack_bottom_to_top_about_the_centre():
    layers = (("##", "##"), ("#.", ".."))
    boxes = pattern_boxes(layers, unit=0.1)
    top = [c for c, _ in boxes if c[2] > 0]
    assert len(top) == 1 and np.allclose(top[0], [-0.05, -0.05, 0.05])
    assert all(np.isclose(c[2], -0.05) for c, _ in boxes if c[2] < 0)


@pytest.mark.parametrize("layers", [(("##", "#"),), ((".", "."),)])
def test_ragged_or_empty_patterns_are_rejected(layers):
    with pytest.raises(ValueError):
        pattern_boxes(layers, unit=0.01)
