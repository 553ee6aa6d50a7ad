"""Kept groups waiting for a policy update: groups beyond a full batch are carried to the next iteration instead of
being discarded. Groups are stored whole (all n_samples trajectories) in arrival order."""

from __future__ import annotations

from typing import Any


class GroupBuffer:
    """FIFO of groups; a group is any object (e.g. a TensorDict of its trajectories)."""

    def __init__(self) -> None:
        self.groups: list[Any] = []

    def __len__(self) -> int:
        return len(self.groups)

    def add(self, groups: list[Any]) -> None:
        self.groups.extend(groups)

    def take(self, count: int) -> list[Any]:
        """The ``count`` oldest groups (fewer if the buffer holds fewer); they leave the buffer."""
        taken, self.groups = self.groups[:count], self.groups[count:]
        return taken

    def state_dict(self) -> dict:
        return {"groups": list(self.groups)}

    def load_state_dict(self, state: dict) -> None:
        self.groups = list(state["groups"])
