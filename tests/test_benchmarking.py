import pytest

import torch

from wmpo.benchmarking import (
    dense_bf16_peak_tflops,
    flops_of,
    interleaved,
    ratio_of_medians,
    spread,
    throughput,
    timed_calls,
)


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


class Counter:
    def __init__(self):
        self.total = 0

    def add(self, n):
        self.total += n
        return self.total


def test_timed_calls_record_every_call_and_restore_the_attributes():
    counter, other = Counter(), Counter()
    original = vars(Counter)["add"]
    events = []
    with timed_calls([(counter, "add", "instance"), (Counter, "add", "class")], sync=lambda: events.append("s")) as phases:
        assert counter.add(2) == 2 and other.add(5) == 5 and other.add(1) == 6
    # The instance's wrapper was made before the class was patched: it wraps the original method.
    assert [len(phases["instance"]), len(phases["class"])] == [1, 2]
    assert all(t >= 0 for v in phases.values() for t in v) and events.count("s") == 6
    assert "add" not in vars(counter) and vars(Counter)["add"] is original
    assert counter.add(1) == 3 and events.count("s") == 6


def test_flops_of_a_matrix_product_are_two_per_multiply_add():
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    assert flops_of(lambda: a @ b) == 2 * 8 * 16 * 4
    assert flops_of(lambda: a + 1) == 0  # elementwise work is left out, as MFU does


def test_mfu_needs_a_known_peak():
    assert dense_bf16_peak_tflops(torch.device("cpu")) is None
    assert throughput(2e12, 1.0, None).endswith("2.000 TFLOP/s  MFU n/a")
    assert throughput(500e12, 1.0, 1000.0).endswith("MFU 50.0%")
