"""Built-in Square_D0: the square nut of robosuite's nut assembly placed onto the square peg.

Written from the MimicGen task definition: robosuite's ``NutAssemblySquare`` with the D0
placement distribution for the square nut and the round nut parked off the table so it never appears.
"""

from __future__ import annotations

from robosuite.environments.manipulation.nut_assembly import NutAssemblySquare
from robosuite.utils.placement_samplers import SequentialCompositeSampler, UniformRandomSampler

TABLE_REFERENCE = (0.0, 0.0, 0.82)


def square_d0_sampler() -> SequentialCompositeSampler:
    """Placement distribution of Square_D0 (sampler names follow NutAssembly's ``<NutName>Sampler`` convention)."""
    sampler = SequentialCompositeSampler(name="ObjectSampler")
    for nut_name, y_range in (("SquareNut", [0.11, 0.225]), ("RoundNut", [-1.1, -1.0])):
        sampler.append_sampler(
            UniformRandomSampler(
                name=f"{nut_name}Sampler",
                x_range=[-0.115, -0.11],
                y_range=y_range,
                rotation=None,
                rotation_axis="z",
                ensure_object_boundary_in_range=False,
                ensure_valid_placement=True,
                reference_pos=TABLE_REFERENCE,
                z_offset=0.02,
            )
        )
    return sampler


class SquareD0(NutAssemblySquare):
    """Square_D0: pick the square nut and insert it onto the square peg."""

    def __init__(self, **kwargs):
        kwargs.setdefault("placement_initializer", square_d0_sampler())
        super().__init__(**kwargs)

    @property
    def square_nut(self):
        return self.nuts[self.nut_to_id["square"]]
