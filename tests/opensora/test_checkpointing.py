import json
import logging

import pytest

from opensora.training.checkpointing import drop_rows_after, newest_complete, require_complete, write_atomically

PREFIX = "step_"


def save(root, step, keep_last=10, payload=b"x" * 100):
    def write(folder):
        (folder / "model.bin").write_bytes(payload)
        (folder / "sub").mkdir()
        (folder / "sub" / "optimizer.bin").write_bytes(payload * 2)
        (folder / "state.json").write_text(json.dumps({"step": step}))

    return write_atomically(root / f"{PREFIX}{step:07d}", PREFIX, keep_last, write)


def test_resume_skips_damaged_and_temporary_folders_with_a_warning(tmp_path, caplog):
    good = save(tmp_path, 1)
    truncated = save(tmp_path, 2)
    (truncated / "sub" / "optimizer.bin").write_bytes(b"x" * 7)
    missing = save(tmp_path, 3)
    (missing / "model.bin").unlink()
    leftover = tmp_path / f"{PREFIX}{4:07d}.tmp"
    leftover.mkdir()
    (leftover / "state.json").write_text("{}")
    with caplog.at_level(logging.WARNING):
        assert newest_complete(tmp_path, PREFIX) == good
    assert f"{missing}: model.bin is missing" in caplog.text
    assert "sub/optimizer.bin has 7 bytes" in caplog.text
    assert ".tmp" not in caplog.text
    with pytest.raises(FileNotFoundError, match="model.bin is missing"):
        require_complete(missing)
    assert require_complete(good) == good


def test_checkpoints_without_a_manifest_still_load(tmp_path):
    legacy = tmp_path / f"{PREFIX}{5:07d}"
    legacy.mkdir()
    (legacy / "state.json").write_text(json.dumps({"step": 5}))
    assert newest_complete(tmp_path, PREFIX) == legacy


def test_pruning_keeps_the_newest_complete_ones_and_leaves_others_alone(tmp_path):
    for step in (1, 2, 3):
        save(tmp_path, step)
    damaged = save(tmp_path, 9)
    (damaged / "model.bin").unlink()
    save(tmp_path, 4, keep_last=2)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{PREFIX}{n:07d}" for n in (3, 4, 9)]


def test_keep_last_below_one_is_refused(tmp_path):
    with pytest.raises(ValueError, match="keep_last=0"):
        save(tmp_path, 1, keep_last=0)
    assert not any(tmp_path.iterdir())


def test_a_failed_write_names_the_path_and_the_free_space_and_keeps_earlier_checkpoints(tmp_path):
    good = save(tmp_path, 1, keep_last=1)

    def full_disk(folder):
        (folder / "model.bin").write_bytes(b"partial")
        raise RuntimeError("basic_ios::clear: iostream error")

    target = tmp_path / f"{PREFIX}{2:07d}"
    with pytest.raises(OSError, match="GiB free") as caught:
        write_atomically(target, PREFIX, 1, full_disk)
    assert str(target) in str(caught.value) and "iostream error" in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [good.name]
    assert require_complete(good) == good


def test_rows_past_the_resumed_step_are_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": s}) + "\n" for s in (1, 2, 3, 4)))
    drop_rows_after(path, 2, key="step")
    assert [json.loads(line)["step"] for line in path.open()] == [1, 2]


def test_a_signal_inside_the_guard_is_recorded_and_the_handler_restored():
    import os
    import signal

    from opensora.training.interrupts import StopOnSignal

    before = signal.getsignal(signal.SIGTERM)
    with StopOnSignal() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
