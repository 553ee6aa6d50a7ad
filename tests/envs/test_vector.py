"""Vectorized rollouts in Ray worker processes."""

import os
import signal

import numpy as np
import pytest

from wmpo.envs.vector import SimulationError, VectorRunner
from wmpo.tasks import get_task

pytestmark = pytest.mark.sim


@pytest.fixture(scope="module")
def runner():
    r = VectorRunner("square", backend="builtin", num_workers=2, timeout_s=300)
    yield r
    r.close()


def test_episodes_run_to_the_horizon(runner):
    task = get_task("square")
    queries = []

    def still(query):
        queries.append(query)
        chunk = np.zeros((len(query.episode_ids), task.action_chunk, task.action_dim))
        chunk[..., 6] = -1.0
        return chunk

    results = runner.run([None, None, None], still, state_ids=[10, 11, 12], progress=False)
    assert [r.state_id for r in results] == [10, 11, 12]
    for r in results:
        assert not r.success and r.finish_step == task.max_steps
        assert r.frames.shape == (task.max_steps + 1, 256, 256, 3) and r.frames.dtype == np.uint8
        assert r.actions.shape == (task.max_steps, 7)
        np.testing.assert_array_equal(r.actions[:, 6], -1.0)
    assert max(len(q.episode_ids) for q in queries) == 2  # two workers run side by side
    assert queries[0].instructions[0] == task.prompt
    assert len(queries) >= 2 * task.num_chunks - 1  # three episodes on two workers take more than one wave


def test_wrong_action_shape_is_reported(runner):
    with pytest.raises(ValueError, match="expected"):
        runner.run([None], lambda q: np.zeros((1, 4, 7)), progress=False)


def test_a_worker_that_keeps_dying_gives_up_naming_task_and_state(runner):
    pid = runner._get(runner.workers[0].pid.remote(), "asking for the pid")

    def crash(query):
        os.kill(pid, signal.SIGKILL)
        return np.zeros((1, 8, 7))

    runner.max_retries = 0
    try:
        with pytest.raises(SimulationError, match=r"Square_D0.*died.*state 5.*rerun 0 times"):
            runner.run([None], crash, state_ids=[5], progress=False)
    finally:
        runner.max_retries = 2
    # The dead process was replaced: the runner still works.
    assert runner._get(runner.workers[0].pid.remote(), "asking for the pid") != pid
