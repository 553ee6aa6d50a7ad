"""Vectorized real-simulator rollouts: K environments in Ray actor processes, one policy query per action chunk.

The driver queries the policy once per chunk for every active episode (lockstep, like the original rollout loop),
sends each environment its chunk, and refills a worker with the next pending initial state as soon as its episode
ends. An episode ends at the first successful step or at the task's ``max_steps`` (with ``after_success``, that many
steps after the first success: data for a world model that must also see what success looks like once it happened).
Scripted experts act on every step from privileged object poses, so they run inside the worker processes instead of
being queried per chunk; their action noise is seeded per episode from the runner's ``expert_seed`` and the episode's
state id, so demonstrations are reproducible whichever worker runs them.

A worker process that dies (killed, out of memory) is replaced by a fresh one and its episode is rerun from its
initial state, up to ``max_retries`` times per episode: the policy callbacks see the rerun start again at step 0, so
callers that key their records and generators by (episode, step) get the same results as a run without the fault.
Errors raised inside a worker (the environment's own exceptions) are not retried.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from wmpo.tasks import TaskSpec, get_task

log = logging.getLogger(__name__)


class SimulationError(RuntimeError):
    """A simulator worker failed or stopped answering."""


class WorkerDied(SimulationError):
    """A simulator worker process ended; the runner replaces it."""


@dataclass
class PolicyQuery:
    """What the policy sees at a chunk boundary, for every active episode."""

    frames: np.ndarray
    """(B, H, W, 3) uint8 upright images of the task camera."""
    instructions: list[str]
    episode_ids: list[int]
    """Index of each episode in the list of states passed to :meth:`VectorRunner.run`."""
    step: list[int]
    """Environment steps already executed in each episode."""


Policy = Callable[[PolicyQuery], np.ndarray]


@dataclass
class EpisodeResult:
    """One finished real-simulator episode."""

    episode_id: int
    state_id: int
    success: bool
    finish_step: int
    """Actions executed (equals ``max_steps`` when the episode did not succeed)."""
    frames: np.ndarray | None
    """(finish_step + 1, H, W, 3) uint8: frame 0 and one frame per executed action; None when not recorded."""
    actions: np.ndarray
    """(finish_step, 7) float32 actions as executed, in environment units."""
    success_step: int | None = None
    """Actions executed when the task first succeeded (``finish_step`` unless the runner records ``after_success``
    steps beyond it); None for a failed episode."""


class SimWorker:
    """Holds one environment in its own process (used as a Ray actor)."""

    def __init__(self, task: str, backend: str, record_frames: bool, scripted_expert: bool, expert_noise: float = 0.0,
                 after_success: int = 0):
        from wmpo.envs.factory import make_env

        self.env = make_env(task, backend=backend)
        self.record_frames = record_frames
        self.scripted_expert = scripted_expert
        self.expert_noise = expert_noise
        self.after_success = after_success
        self.expert = None
        self.steps = 0
        self.success_step: int | None = None

    def backend(self) -> str:
        return self.env.backend

    def start(self, state: dict | int | None, expert_seed: int | None = None) -> dict:
        """Begin an episode from a saved state, or from a state sampled with the given NumPy seed.

        ``expert_seed`` seeds the scripted expert's action noise for this episode.
        """
        self.steps, self.success_step = 0, None
        if isinstance(state, (int, np.integer)):
            np.random.seed(int(state))
            state = None
        if self.scripted_expert:
            from wmpo.envs.experts import make_expert

            self.expert = make_expert(self.env.task.name, noise=self.expert_noise, seed=expert_seed)
        return {"frame": self.env.start_episode(state)}

    def run_chunk(self, actions: np.ndarray | None) -> dict:
        """Execute a chunk (``None``: the scripted expert's next chunk) until the episode ends."""
        frames, executed = [], []
        for k in range(self.env.task.action_chunk):
            action = actions[k] if actions is not None else self.expert.act(self.env.privileged_state())
            result = self.env.step(action, render=self.record_frames)
            self.steps += 1
            executed.append(action)
            if self.record_frames:
                frames.append(result.frame)
            if result.success and self.success_step is None:
                self.success_step = self.steps
            if self._ended():
                break
        done = self._ended()
        last = frames[-1] if frames else self.env.render()
        return {
            "frames": frames,
            "actions": np.asarray(executed, dtype=np.float32),
            "success_step": self.success_step,
            "done": done,
            "steps": self.steps,
            "obs": None if done else {"frame": last},
        }

    def _ended(self) -> bool:
        succeeded = self.success_step is not None and self.steps >= self.success_step + self.after_success
        return succeeded or self.steps >= self.env.task.max_steps

    def sample_state(self, numpy_seed: int) -> tuple[dict, np.ndarray]:
        from wmpo.envs.initial_states import sample_state

        return sample_state(self.env, numpy_seed)

    def pid(self) -> int:
        return os.getpid()

@dataclass
class _Episode:
    episode_id: int
    state_id: int
    obs: dict
    frames: list
    actions: list
    steps: int = 0


class VectorRunner:
    """Roll a chunk-level policy in ``num_workers`` parallel simulator processes."""

    def __init__(
        self,
        task: str | TaskSpec,
        backend: str = "auto",
        num_workers: int = 2,
        record_frames: bool = True,
        scripted_expert: bool = False,
        timeout_s: float = 600.0,
        cpus_per_worker: float | None = None,
        expert_noise: float = 0.0,
        expert_seed: int = 0,
        max_retries: int = 2,
        after_success: int = 0,
    ):
        """``expert_noise`` is the std of the scripted expert's Gaussian action noise (see ``make_expert``);
        ``max_retries`` bounds the reruns of one episode after its worker process died; ``after_success`` is the
        number of steps an episode goes on after its first success (within the horizon)."""
        import ray

        if max_retries < 0:
            raise ValueError(f"max_retries={max_retries}: must be >= 0")
        if after_success < 0:
            raise ValueError(f"after_success={after_success}: must be >= 0")
        self.task = task if isinstance(task, TaskSpec) else get_task(task)
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.record_frames = record_frames
        self.scripted_expert = scripted_expert
        self.expert_seed = expert_seed
        from wmpo.distributed.worker_group import init_ray

        init_ray()
        if cpus_per_worker is None:
            # Share what is free: other actors (e.g. policy workers) may already hold part of the cluster.
            # Ray leaves the key out when nothing is free.
            free = ray.available_resources().get("CPU", 0.0)
            cpus_per_worker = max(0.01, min(1.0, free / num_workers))
        self._actor = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(SimWorker)
        self._args = (self.task.name, backend, record_frames, scripted_expert, expert_noise, after_success)
        self.workers = [self._actor.remote(*self._args) for _ in range(num_workers)]
        self.backend = self._get(
            self.workers[0].backend.remote(),
            f"starting the simulator ({num_workers} workers x {cpus_per_worker:g} CPUs; are enough CPUs free in Ray?)",
        )
        log.info("%d %s simulator workers (%s backend)", num_workers, self.task.env_name, self.backend)

    def _get(self, refs, what: str):
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

        from wmpo.distributed.worker_group import ray_error_summary

        try:
            return ray.get(refs, timeout=self.timeout_s)
        except GetTimeoutError as exc:
            raise SimulationError(f"{self.task.env_name}: no answer within {self.timeout_s:.0f} s while {what}") from exc
        except RayActorError as exc:
            raise WorkerDied(f"{self.task.env_name}: simulator worker died while {what}: "
                             f"{ray_error_summary(exc)}") from exc
        except RayTaskError as exc:
            raise SimulationError(f"{self.task.env_name}: simulator worker failed while {what}: {exc}") from exc

    def _replace_worker(self, worker: int, episode_id: int, state_id: int, error: WorkerDied,
                        retries: dict[int, int], pending: list[int], free: list[int]) -> None:
        """Start a fresh process in slot ``worker`` after its process died and queue its episode to run again next;
        give up on an episode rerun too often."""
        import ray

        pending.append(episode_id)
        free.append(worker)
        ray.kill(self.workers[worker])
        self.workers[worker] = self._actor.remote(*self._args)
        retries[episode_id] = retries.get(episode_id, 0) + 1
        if retries[episode_id] > self.max_retries:
            raise SimulationError(f"{error} (the episode of state {state_id} was rerun {self.max_retries} times; "
                                  f"giving up)") from error
        log.warning("simulator worker %d died (%s); a new one reruns the episode of state %d (retry %d of %d)",
                    worker, error, state_id, retries[episode_id], self.max_retries)

    def run(
        self,
        states: list[dict | int | None],
        policy: Policy | None,
        state_ids: list[int] | None = None,
        progress: bool = True,
    ) -> list[EpisodeResult]:
        """One episode per state; an int samples a state with that NumPy seed, ``None`` an unseeded one.

        ``policy=None`` lets the workers' scripted experts act (runner built with ``scripted_expert=True``).
        Results come back in the order of ``states``.
        """
        from tqdm import tqdm

        if policy is None and not self.scripted_expert:
            raise ValueError("policy=None needs a VectorRunner built with scripted_expert=True")

        state_ids = list(range(len(states))) if state_ids is None else list(state_ids)
        expert_seeds = self._expert_seeds(state_ids)
        pending = list(range(len(states)))[::-1]
        free = list(range(len(self.workers)))[::-1]
        active: dict[int, _Episode] = {}
        results: dict[int, EpisodeResult] = {}
        retries: dict[int, int] = {}
        bar = tqdm(total=len(states), desc=f"episodes ({self.task.name})", disable=not progress)
        start = time.perf_counter()
        while pending or active:
            starting = {}
            while pending and free:
                worker, episode = free.pop(), pending.pop()
                starting[worker] = (episode, self.workers[worker].start.remote(states[episode], expert_seeds[episode]))
            for worker, (episode, ref) in starting.items():
                try:
                    obs = self._get(ref, f"resetting to state {state_ids[episode]}")
                except WorkerDied as exc:
                    self._replace_worker(worker, episode, state_ids[episode], exc, retries, pending, free)
                    continue
                active[worker] = _Episode(episode, state_ids[episode], obs, [obs["frame"]], [])
            if not active:
                continue
            order = sorted(active)
            chunks = [None] * len(order) if policy is None else self._query(policy, [active[w] for w in order])
            refs = {w: self.workers[w].run_chunk.remote(chunks[i]) for i, w in enumerate(order)}
            for w, ref in refs.items():
                ep = active[w]
                try:
                    out = self._get(ref, f"stepping state {ep.state_id} at step {ep.steps}")
                except WorkerDied as exc:
                    del active[w]
                    self._replace_worker(w, ep.episode_id, ep.state_id, exc, retries, pending, free)
                    continue
                ep.frames.extend(out["frames"])
                ep.actions.append(out["actions"])
                ep.steps, ep.obs = out["steps"], out["obs"]
                if out["done"]:
                    results[ep.episode_id] = EpisodeResult(
                        episode_id=ep.episode_id,
                        state_id=ep.state_id,
                        success=out["success_step"] is not None,
                        finish_step=ep.steps,
                        frames=np.stack(ep.frames) if self.record_frames else None,
                        actions=np.concatenate(ep.actions).astype(np.float32),
                        success_step=out["success_step"],
                    )
                    del active[w]
                    free.append(w)
                    bar.update(1)
                    bar.set_postfix(success=f"{np.mean([r.success for r in results.values()]):.2f}")
        bar.close()
        elapsed = time.perf_counter() - start
        log.info("%d episodes in %.1f s (%.2f episodes/min)", len(states), elapsed, 60 * len(states) / max(elapsed, 1e-9))
        return [results[i] for i in range(len(states))]

    def sample_initial_states(self, n: int, seed: int) -> tuple[list[dict], np.ndarray]:
        """The states of ``sample_initial_states(env, n, seed)``, drawn in the workers in parallel."""
        from wmpo.envs.initial_states import state_seed

        refs = [self.workers[i % len(self.workers)].sample_state.remote(state_seed(seed, i)) for i in range(n)]
        pairs = self._get(refs, f"sampling {n} initial states")
        return [state for state, _ in pairs], np.stack([frame for _, frame in pairs])

    def _expert_seeds(self, state_ids: list[int]) -> list[int]:
        """Noise seed per episode from (runner seed, state id, repeat): a state listed twice gets two distinct demos."""
        seen: dict[int, int] = {}
        seeds = []
        for state_id in state_ids:
            repeat = seen[state_id] = seen.get(state_id, -1) + 1
            seeds.append(int(np.random.SeedSequence([self.expert_seed, state_id, repeat]).generate_state(1)[0]))
        return seeds

    def _query(self, policy: Policy, episodes: list[_Episode]) -> np.ndarray:
        query = PolicyQuery(
            frames=np.stack([ep.obs["frame"] for ep in episodes]),
            instructions=[self.task.prompt] * len(episodes),
            episode_ids=[ep.episode_id for ep in episodes],
            step=[ep.steps for ep in episodes],
        )
        chunks = np.asarray(policy(query), dtype=np.float64)
        expected = (len(episodes), self.task.action_chunk, self.task.action_dim)
        if chunks.shape != expected:
            raise ValueError(f"policy returned actions of shape {chunks.shape}, expected {expected}")
        return chunks

    def close(self) -> None:
        import ray

        for worker in self.workers:
            ray.kill(worker)
        self.workers = []

