import pytest

from wmpo.benchmarking import interleaved, ratio_of_medians, spread


def test_modes_are_warmed_up_then_take_turns():
    calls = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3, warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert [len(v) for v in times.values()] == [3, 3] and all(t >= 0 for v in times.values() for t in v)


def test_sync_runs_around_every_timed_call():
    events = []
    interleaved({"a": lambda: events.append("call")}, repeats=2, warmup=0, sync=lambda: events.append("sync"))
    assert events == ["sync", "call", "sync"] * 2


def test_summaries_use_medians():
    assert ratio_of_medians([4.0, 1.0, 9.0], [1.0, 2.0, 100.0]) == pytest.approx(2.0)
    assert spread([3.0, 1.0, 2.0]) == "   2.000 s [1.000–3.000]"
    with pytest.raises(ValueError):
        interleaved({"a": lambda: None}, repeats=0)
