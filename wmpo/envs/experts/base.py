"""Scripted experts: phase machines over privileged object poses, queried once per action chunk."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from wmpo.envs.experts.controller import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    Goal,
    nearest_symmetric_yaw,
    plan_chunk,
    wrap_angle_period,
    yaw_of_matrix,
    yaw_of_quat,
)

State = dict[str, np.ndarray]


@dataclass
class Phase:
    """One stage of a scripted behaviour."""

    name: str
    goal: Callable[[State], Goal]
    """Where to go this chunk, from the current privileged state."""
    done: Callable[[State, int], bool]
    """Whether the phase is over, given the state at a chunk start and the chunks already spent in the phase."""
    lost: Callable[[State], bool] | None = None
    """Whether the grasp was lost; the expert then starts its pick-and-place over at ``retry_from``."""
    retry_from: str = ""


@dataclass
class PickPlace:
    """Grasp an object at a grasp point and set it down at a place pose; all callables read the privileged state."""

    grasp_point: Callable[[State], np.ndarray]
    object_pos: Callable[[State], np.ndarray]
    object_yaw: Callable[[State], float]
    grasp_yaw_offset: float
    """Angle between the object's heading and the finger closing axis at the grasp."""
    grasp_symmetry: float
    """The grasp is the same after turning the gripper by this angle (pi for a bar, pi/2 for a cube)."""
    place_xy: Callable[[State], np.ndarray]
    place_yaw: Callable[[State], float]
    place_symmetry: float
    carry_z: Callable[[State], float]
    """Height of the object centre while moving it over the place pose."""
    place_z: Callable[[State], float]
    """Height of the object centre when it is set down."""
    approach_height: float = 0.04
    grasp_depth: float = 0.0
    """How far below the grasp point the grip site goes."""
    lift_first: bool = False
    """Rise to the carry height before moving sideways (keeps a carried object clear of its neighbours)."""


def _eef_yaw(s: State) -> float:
    return yaw_of_matrix(s["eef_mat"])


def _reached(
    goal: Callable[[State], Goal], pos_tol: float, yaw_tol: float, max_chunks: int = 1000
) -> Callable[[State, int], bool]:
    """Done when the end effector is within tolerance, or (contacts can stall the last millimetres) after max_chunks."""

    def done(s: State, chunks: int) -> bool:
        g = goal(s)
        yaw_err = abs(wrap_angle_period(g.yaw - _eef_yaw(s), 2 * np.pi))
        reached = np.linalg.norm(g.pos - s["eef_pos"]) < pos_tol and yaw_err < yaw_tol
        return bool(reached or chunks >= max_chunks)

    return done


def _after(chunks: int) -> Callable[[State, int], bool]:
    return lambda _s, spent: spent >= chunks


def pick_place_phases(task: PickPlace, prefix: str = "") -> list[Phase]:
    """Reach above, descend, close, (lift,) carry over the place pose aligned, lower, open, retreat, verify."""

    def grasp_yaw(s: State) -> float:
        return nearest_symmetric_yaw(task.object_yaw(s) + task.grasp_yaw_offset, _eef_yaw(s), task.grasp_symmetry)

    def object_offset(s: State, target_center: np.ndarray) -> np.ndarray:
        return s["eef_pos"] + (target_center - task.object_pos(s))

    def carried_yaw(s: State) -> float:
        turn = wrap_angle_period(task.place_yaw(s) - task.object_yaw(s), task.place_symmetry)
        return _eef_yaw(s) + turn

    def reach(s):
        return Goal(task.grasp_point(s) + [0, 0, task.approach_height], grasp_yaw(s), GRIPPER_OPEN)

    def descend(s):
        return Goal(task.grasp_point(s) - [0, 0, task.grasp_depth], grasp_yaw(s), GRIPPER_OPEN, max_speed=0.6)

    def close(s):
        return Goal(task.grasp_point(s) - [0, 0, task.grasp_depth], _eef_yaw(s), GRIPPER_CLOSED, max_speed=0.2)

    def lift(s):
        return Goal(object_offset(s, np.r_[task.object_pos(s)[:2], task.carry_z(s)]), _eef_yaw(s), GRIPPER_CLOSED)

    def carry(s):
        target = np.r_[task.place_xy(s), task.carry_z(s)]
        return Goal(object_offset(s, target), carried_yaw(s), GRIPPER_CLOSED)

    def carry_done(s, _chunks):
        xy_err = np.linalg.norm(task.place_xy(s) - task.object_pos(s)[:2])
        yaw_err = abs(wrap_angle_period(task.place_yaw(s) - task.object_yaw(s), task.place_symmetry))
        return bool(xy_err < 0.006 and yaw_err < 0.1)

    def lower(s):
        target = np.r_[task.place_xy(s), task.place_z(s)]
        return Goal(object_offset(s, target), carried_yaw(s), GRIPPER_CLOSED, max_speed=0.5)

    def lower_done(s, chunks):
        return bool(task.object_pos(s)[2] - task.place_z(s) < 0.006 or chunks >= 4)

    def release(s):
        return Goal(s["eef_pos"], _eef_yaw(s), GRIPPER_OPEN, max_speed=0.0)

    def lost(s):
        return bool(np.linalg.norm(task.grasp_point(s) - s["eef_pos"]) > 0.03)

    def retreat(s):
        return Goal(s["eef_pos"] + [0, 0, 0.08], _eef_yaw(s), GRIPPER_OPEN)

    def misplaced(s):
        xy_err = np.linalg.norm(task.place_xy(s) - task.object_pos(s)[:2])
        return bool(xy_err > 0.02 or task.object_pos(s)[2] < task.place_z(s) - 0.01)

    lifting = [Phase(prefix + "lift", lift, _reached(lift, 0.02, 10.0), lost, prefix + "reach")] if task.lift_first else []
    return [
        Phase(prefix + "reach", reach, _reached(reach, 0.008, 0.08)),
        Phase(prefix + "descend", descend, _reached(descend, 0.007, 0.1, max_chunks=3)),
        Phase(prefix + "close", close, _after(1)),
        *lifting,
        Phase(prefix + "carry", carry, carry_done, lost, prefix + "reach"),
        Phase(prefix + "lower", lower, lower_done, lost, prefix + "reach"),
        Phase(prefix + "release", release, _after(1)),
        Phase(prefix + "retreat", retreat, _after(1)),
        # the lost check runs before the done check, so a misplaced object restarts the pick and a placed one moves on
        Phase(prefix + "verify", retreat, _after(0), misplaced, prefix + "reach"),
    ]


@dataclass
class ScriptedExpert:
    """Runs its phases in order; each call returns the next chunk of actions."""

    phases: list[Phase]
    chunk_size: int = 8
    phase_index: int = 0
    chunks_in_phase: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def phase(self) -> Phase:
        return self.phases[min(self.phase_index, len(self.phases) - 1)]

    def act(self, state: State) -> np.ndarray:
        if self.phase.lost is not None and self.phase.lost(state):
            self.phase_index = next(i for i, p in enumerate(self.phases) if p.name == self.phase.retry_from)
            self.chunks_in_phase = 0
        while self.phase_index < len(self.phases) - 1 and self.phase.done(state, self.chunks_in_phase):
            self.phase_index += 1
            self.chunks_in_phase = 0
        self.history.append(self.phase.name)
        self.chunks_in_phase += 1
        return plan_chunk(state, self.phase.goal(state), steps=self.chunk_size)


def quat_yaw(key: str) -> Callable[[State], float]:
    return lambda s: yaw_of_quat(s[key])
