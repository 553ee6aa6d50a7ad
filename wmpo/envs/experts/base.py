"""Scripted experts: phase machines over privileged object poses, acting every environment step."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from wmpo.envs.experts.controller import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    Goal,
    nearest_symmetric_yaw,
    step_action,
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
    """Where to go now, from the current privileged state."""
    done: Callable[[State, int], bool]
    """Whether the phase is over, given the current state and the steps already spent in the phase."""
    restart: Callable[[State], str | None] = lambda _s: None
    """Name of the phase to start over from when something went wrong (grasp lost, object misplaced), else None."""


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
    transit_z: float = 0.0
    """Lowest grip-site height while reaching sideways toward the grasp (keeps the fingers off a built stack)."""
    align_xy: float = 0.004
    align_yaw: float = 0.08
    """How closely the carried object must be over its place pose before it is lowered (metres, radians)."""
    rest_above: float = np.inf
    """How far above ``place_z`` a set-down object may rest (an object inserted into a hole must sink in)."""
    drop_height: float = 0.0
    """Release the object this far above ``place_z`` (where it comes to rest), to drop it into a holder the
    fingers cannot enter."""
    slide_within: float = 0.0
    """When > 0, first slide the grasped object just above the table toward the place pose until it is this close
    (metres): rising first at the far edge of the table stretches the arm straight, where it can no longer move in."""
    slide_if_shallow: bool = False
    """Slide only when the hand could not descend all the way to the grasp (in a far corner of the table): an object
    held well is lifted at once, since sliding swings it in the fingers."""

    def misplaced(self, s: State) -> bool:
        """The object is not (or no longer) at its place pose."""
        xy_err = np.linalg.norm(self.place_xy(s) - self.object_pos(s)[:2])
        dz = self.object_pos(s)[2] - self.place_z(s)
        return bool(xy_err > 0.02 or dz < -0.01 or dz > self.rest_above)


def _eef_yaw(s: State) -> float:
    return yaw_of_matrix(s["eef_mat"])


def reached(
    goal: Callable[[State], Goal], pos_tol: float, yaw_tol: float, max_steps: int = 10_000
) -> Callable[[State, int], bool]:
    """Done when the end effector is within tolerance, or (contacts can stall the last millimetres) after max_steps."""

    def done(s: State, steps: int) -> bool:
        g = goal(s)
        yaw_err = abs(wrap_angle_period(g.yaw - _eef_yaw(s), 2 * np.pi))
        reached = np.linalg.norm(g.pos - s["eef_pos"]) < pos_tol and yaw_err < yaw_tol
        return bool(reached or steps >= max_steps)

    return done


def after_steps(steps: int) -> Callable[[State, int], bool]:
    return lambda _s, spent: spent >= steps


def pick_place_phases(
    task: PickPlace, prefix: str = "", undone: Callable[[State], str | None] = lambda _s: None
) -> list[Phase]:
    """Reach above, descend, close, (lift,) carry over the place pose aligned, lower, open, retreat, verify.

    ``undone`` names the phase to restart from when an earlier step of a longer task was undone (a stacked cube
    knocked off, say); it is checked in every phase.
    """

    def grasp_yaw(s: State) -> float:
        return nearest_symmetric_yaw(task.object_yaw(s) + task.grasp_yaw_offset, _eef_yaw(s), task.grasp_symmetry)

    def object_offset(s: State, target_center: np.ndarray) -> np.ndarray:
        return s["eef_pos"] + (target_center - task.object_pos(s))

    def carried_yaw(s: State) -> float:
        turn = wrap_angle_period(task.place_yaw(s) - task.object_yaw(s), task.place_symmetry)
        return _eef_yaw(s) + turn

    def reach(s):
        target = task.grasp_point(s) + [0, 0, task.approach_height]
        if np.linalg.norm(target[:2] - s["eef_pos"][:2]) > 0.02:
            target[2] = max(target[2], task.transit_z)
        return Goal(target, grasp_yaw(s), GRIPPER_OPEN)

    def descend(s):
        return Goal(task.grasp_point(s) - [0, 0, task.grasp_depth], grasp_yaw(s), GRIPPER_OPEN, max_speed=0.6)

    def close(s):
        return Goal(task.grasp_point(s) - [0, 0, task.grasp_depth], _eef_yaw(s), GRIPPER_CLOSED, max_speed=0.2)

    def lift(s):
        return Goal(object_offset(s, np.r_[task.object_pos(s)[:2], task.carry_z(s)]), _eef_yaw(s), GRIPPER_CLOSED)

    def slide(s):
        offset = task.place_xy(s) - task.object_pos(s)[:2]
        distance = np.linalg.norm(offset)
        step = offset * max(0.0, 1.0 - task.slide_within / max(distance, 1e-9))
        target = np.r_[task.object_pos(s)[:2] + step, task.grasp_point(s)[2] + 0.01]
        return Goal(s["eef_pos"] + (target - task.grasp_point(s)), _eef_yaw(s), GRIPPER_CLOSED)

    def shallow(s) -> bool:
        return bool(s["eef_pos"][2] - (task.grasp_point(s)[2] - task.grasp_depth) > 0.004)

    def slide_done(s, steps):
        if task.slide_if_shallow and steps == 0 and not shallow(s):
            return True
        return bool(np.linalg.norm(task.place_xy(s) - task.object_pos(s)[:2]) < task.slide_within + 0.01)

    def if_shallow(s):
        # At the table's far corners the arm cannot descend all the way, and a grip on an object's top edge drops
        # it once lifted; slid within reach, the object is picked again with the hand opening on the way up.
        return if_lost(s) or (prefix + "reach" if shallow(s) else None)

    def carry(s):
        target = np.r_[task.place_xy(s), task.carry_z(s)]
        return Goal(object_offset(s, target), carried_yaw(s), GRIPPER_CLOSED)

    def carry_done(s, _steps):
        xy_err = np.linalg.norm(task.place_xy(s) - task.object_pos(s)[:2])
        yaw_err = abs(wrap_angle_period(task.place_yaw(s) - task.object_yaw(s), task.place_symmetry))
        return bool(xy_err < task.align_xy and yaw_err < task.align_yaw)

    def lower(s):
        target = np.r_[task.place_xy(s), task.place_z(s) + task.drop_height]
        return Goal(object_offset(s, target), carried_yaw(s), GRIPPER_CLOSED, max_speed=0.5)

    def lower_done(s, steps):
        return bool(task.object_pos(s)[2] - task.place_z(s) - task.drop_height < 0.006 or steps >= 32)

    def release(s):
        return Goal(s["eef_pos"], _eef_yaw(s), GRIPPER_OPEN, max_speed=0.0)

    def retreat(s):
        return Goal(np.r_[s["eef_pos"][:2], task.carry_z(s) + 0.05], _eef_yaw(s), GRIPPER_OPEN)

    def if_lost(s):
        lost = np.linalg.norm(task.grasp_point(s) - s["eef_pos"]) > 0.03
        return undone(s) or (prefix + "reach" if lost else None)

    def if_misplaced(s):
        return undone(s) or (prefix + "reach" if task.misplaced(s) else None)

    phases = [
        Phase(prefix + "reach", reach, reached(reach, 0.008, 0.08, max_steps=60), undone),
        Phase(prefix + "descend", descend, reached(descend, 0.007, 0.1, max_steps=24), undone),
        Phase(prefix + "close", close, after_steps(6), undone),
        Phase(prefix + "slide", slide, slide_done, if_lost),
        Phase(prefix + "regrasp", slide, after_steps(0), if_shallow),
        Phase(prefix + "lift", lift, reached(lift, 0.02, 10.0), if_lost),
        Phase(prefix + "carry", carry, carry_done, if_lost),
        Phase(prefix + "lower", lower, lower_done, if_lost),
        Phase(prefix + "release", release, after_steps(5), undone),
        Phase(prefix + "retreat", retreat, reached(retreat, 0.02, 10.0, max_steps=20), undone),
        # restart runs before the done check, so a misplaced object restarts the pick and a placed one moves on
        Phase(prefix + "verify", retreat, after_steps(0), if_misplaced),
    ]
    skipped = {"lift"} if not task.lift_first else set()
    skipped |= {"slide", "regrasp"} if task.slide_within <= 0 else set()
    return [p for p in phases if p.name.removeprefix(prefix) not in skipped]


@dataclass
class ScriptedExpert:
    """Runs its phases in order; each call returns the next action.

    With ``noise`` > 0, Gaussian noise of that std is added to the three translation dims of every action (then
    clipped to the action range). The phase machine stays closed-loop, so the expert keeps correcting what the noise
    pushed off course, which gives varied but still mostly successful demonstrations. Rotations get no noise: the
    corrections of a slightly tilted hand are actions a camera policy cannot read off its frames, and a policy that
    learns them as noise drifts the hand's tilt chunk after chunk.
    """

    phases: list[Phase]
    phase_index: int = 0
    steps_in_phase: int = 0
    noise: float = 0.0
    rng: np.random.Generator = field(default_factory=np.random.default_rng)

    @property
    def phase(self) -> Phase:
        return self.phases[min(self.phase_index, len(self.phases) - 1)]

    def act(self, state: State) -> np.ndarray:
        restart = self.phase.restart(state)
        if restart is not None:
            self.phase_index = next(i for i, p in enumerate(self.phases) if p.name == restart)
            self.steps_in_phase = 0
        while self.phase_index < len(self.phases) - 1 and self.phase.done(state, self.steps_in_phase):
            self.phase_index += 1
            self.steps_in_phase = 0
        self.steps_in_phase += 1
        action = step_action(state, self.phase.goal(state))
        if self.noise > 0:
            action[:3] = np.clip(action[:3] + self.rng.normal(0.0, self.noise, 3), -1.0, 1.0)
        return action


def quat_yaw(key: str) -> Callable[[State], float]:
    return lambda s: yaw_of_quat(s[key])
