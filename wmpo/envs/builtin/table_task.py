"""Base of the built-in tasks that bring their own objects: robosuite's Lift without its cube."""

from __future__ import annotations

from robosuite.environments.manipulation.lift import Lift


class TableTask(Lift):
    """Lift's table, robot, settings and placement-sampler reset; subclasses build the objects and the success check.

    Subclasses set ``self.placement_initializer`` and ``self.model`` in ``_load_model`` (after
    ``super()._load_model()``) and define ``_check_success``; the reward is the sparse success.
    """

    def __init__(self, placement_initializer=None, **kwargs):
        if placement_initializer is not None:
            raise TypeError(f"{type(self).__name__} samples its D0 placements itself; it takes no placement_initializer")
        super().__init__(**kwargs)

    def _load_model(self):
        super(Lift, self)._load_model()  # the robots, without Lift's cube

    def _setup_references(self):
        super(Lift, self)._setup_references()

    def _setup_observables(self):
        return super(Lift, self)._setup_observables()

    def visualize(self, vis_settings):
        super(Lift, self).visualize(vis_settings=vis_settings)

    def reward(self, action=None) -> float:
        return float(self._check_success())
