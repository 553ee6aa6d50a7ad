"""The scripted experts solve most seeded initial states of the built-in tasks (run in the vector runner)."""

import pytest

from wmpo.envs.initial_states import state_seed
from wmpo.envs.vector import VectorRunner

pytestmark = [pytest.mark.sim, pytest.mark.slow]


@pytest.mark.parametrize("task", ["square", "stack_three", "three_piece_assembly", "coffee"])
def test_expert_succeeds_on_most_seeded_states(task):
    runner = VectorRunner(task, backend="builtin", num_workers=2, record_frames=False, scripted_expert=True)
    try:
        results = runner.run([state_seed(0, i) for i in range(10)], policy=None, progress=False)
    finally:
        runner.close()
    successes = [r.state_id for r in results if r.success]
    assert len(successes) >= 8, f"{task}: expert succeeded only on states {successes}"
    for r in results:
        assert r.frames is None and r.actions.shape == (r.finish_step, 7)


def test_expert_runner_needs_the_flag():
    runner = VectorRunner("square", backend="builtin", num_workers=1, record_frames=False)
    try:
        with pytest.raises(ValueError, match="scripted_expert=True"):
            runner.run([0], policy=None, progress=False)
    finally:
        runner.close()
