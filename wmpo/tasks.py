"""Task registry: the single source of truth for per-task constants.

For the four released MimicGen D0 tasks every number comes from the released WMPO training scripts: the
environment name, the instruction the released policies were trained with, the rollout horizon,
the reward-model success threshold, the action un-normalization key and the update slicing. ``lift`` is this
project's own small task (robosuite Lift at 64×64 with a scripted expert) for CPU-scale experiments; it has no
released checkpoints. The YAML files under ``configs/tasks/`` carry the same values for Hydra; ``tests/test_tasks.py``
checks that both agree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from opensora.errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    """Constants of one task (a MimicGen D0 task or a built-in one)."""

    name: str
    """Short task name used on the command line and in paths (e.g. ``square``)."""
    env_name: str
    """Environment name registered by MimicGen / the built-in backend (e.g. ``Square_D0``)."""
    prompt: str
    """Instruction text exactly as the released policies were trained with."""
    max_steps: int
    """Episode horizon in environment steps (a multiple of ``action_chunk``)."""
    rm_threshold: float
    """Reward-model score at or above which an 8-frame window counts as success."""
    traj_mini_batch_size: int
    """Number of action chunks per slice when recomputing log-probs during the policy update."""
    action_chunk: int = 8
    """Actions predicted per policy query."""
    action_dim: int = 7
    """Action dimension: 3 position deltas, 3 axis-angle deltas, 1 gripper."""
    camera: str = "agentview"
    """Camera whose image the policy, the world model and the reward model see."""
    image_size: int = 256
    """Rendered image height and width in pixels."""
    settle_steps: int = 10
    """Zero-action steps after a reset; the last observation is frame 0 of an episode."""
    stats_key: str | None = None
    """Action-statistics key when it does not follow the released ``<name>_d0_300_demos`` naming."""

    @property
    def unnorm_key(self) -> str:
        """Key of this task's action statistics in the policy's ``norm_stats``."""
        return self.stats_key or f"{self.name}_d0_300_demos"

    @property
    def num_chunks(self) -> int:
        """Policy queries per full-length episode."""
        return self.max_steps // self.action_chunk

    def to_dict(self) -> dict:
        """Plain dictionary including the derived fields, for logs and configs."""
        fields = asdict(self)
        del fields["stats_key"]  # unnorm_key below is its resolved value; one key keeps the YAML files unambiguous
        return {**fields, "unnorm_key": self.unnorm_key}


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("coffee", "Coffee_D0", "coffee", 256, 0.82, 16),
        TaskSpec("square", "Square_D0", "insert the square into the stick", 184, 0.96, 23),
        TaskSpec("stack_three", "StackThree_D0", "stack_three", 320, 0.66, 20),
        TaskSpec("three_piece_assembly", "ThreePieceAssembly_D0", "three_piece_assembly", 384, 0.62, 16),
        # 64 steps: the clean scripted expert lifts the cube in 26-42 steps. rm_threshold is a placeholder until a
        # reward model is trained for this task. Its own close "workspace" camera shows the cube about 8 px wide at
        # 64 px (agentview: 3-4 px) and the lift that decides success as about 7 px of motion.
        TaskSpec("lift", "Lift", "pick up the cube", 64, 0.5, 4, camera="workspace", image_size=64,
                 stats_key="lift_scripted_demos"),
    )
}
RELEASED_TASKS: tuple[str, ...] = ("coffee", "square", "stack_three", "three_piece_assembly")
"""Tasks with released WMPO checkpoints and data (what ``download_hf.py`` can fetch)."""


class UnknownTaskError(UserError, KeyError):
    """Raised for a task name that is not in the registry."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_task(name: str) -> TaskSpec:
    """Return the spec of ``name``; accepts the short name or the environment name (``Square_D0``)."""
    if name in TASKS:
        return TASKS[name]
    for spec in TASKS.values():
        if spec.env_name == name:
            return spec
    raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
