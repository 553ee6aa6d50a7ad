"""Rigid objects built from unit-box voxel patterns, as robosuite composite objects."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from robosuite.models.objects import CompositeObject
from robosuite.utils.mjcf_utils import CustomMaterial, add_to_dict


def pattern_boxes(layers: Sequence[Sequence[str]], unit: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(centre, half size) of the boxes that fill a voxel pattern, relative to the pattern's bounding-box centre.

    ``layers`` go bottom to top; each is a list of rows along +y, each row a string along +x where ``#`` is a unit
    box and ``.`` is empty. Consecutive ``#`` of a row merge into one box, which keeps the shape and gives MuJoCo
    fewer geoms to collide.
    """
    nz, ny, nx = len(layers), len(layers[0]), len(layers[0][0])
    if any(len(layer) != ny or any(len(row) != nx for row in layer) for layer in layers):
        raise ValueError("every layer of a voxel pattern needs the same number of rows of the same length")
    boxes = []
    for k, layer in enumerate(layers):
        for j, row in enumerate(layer):
            i = 0
            while i < nx:
                if row[i] != "#":
                    i += 1
                    continue
                start = i
                while i < nx and row[i] == "#":
                    i += 1
                centre = np.array([(start + i) / 2 - nx / 2, j + 0.5 - ny / 2, k + 0.5 - nz / 2]) * unit
                boxes.append((centre, np.array([(i - start) / 2, 0.5, 0.5]) * unit))
    if not boxes:
        raise ValueError("a voxel pattern needs at least one '#'")
    return boxes


def voxel_object(name: str, layers: Sequence[Sequence[str]], unit: float, density: float,
                 material: CustomMaterial, friction: tuple[float, float, float] = (1.0, 0.005, 0.0001)) -> CompositeObject:
    """A free-jointed rigid body of unit boxes of edge ``unit`` (metres) laid out as ``layers``."""
    half_extent = np.array([len(layers[0][0]), len(layers[0]), len(layers)]) * unit / 2
    geoms: dict = {}
    for index, (centre, half) in enumerate(pattern_boxes(layers, unit)):
        add_to_dict(
            dic=geoms,
            geom_types="box",
            geom_locations=tuple(centre),
            geom_quats=(1, 0, 0, 0),
            geom_sizes=tuple(half),
            geom_names=f"box_{index}",
            geom_rgbas=None,
            geom_materials=material.mat_attrib["name"],
            geom_frictions=friction,
            geom_condims=4,
        )
    obj = CompositeObject(name=name, total_size=list(half_extent), locations_relative_to_center=True,
                          obj_types="all", density=density, **geoms)
    obj.append_material(material)
    return obj
