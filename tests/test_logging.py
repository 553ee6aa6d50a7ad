import json

import numpy as np

from wmpo.logging import MetricLogger, write_video


def test_metrics_reach_jsonl_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = MetricLogger(tmp_path, tensorboard=True)
    logger.write(1, {"rollout/success": 0.25, "actor/grad_norm": 1.5})
    logger.write(2, {"rollout/success": 0.5})
    logger.close()
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines == [{"iteration": 1, "rollout/success": 0.25, "actor/grad_norm": 1.5},
                     {"iteration": 2, "rollout/success": 0.5}]
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("rollout/success")] == [(1, 0.25), (2, 0.5)]


def test_a_resumed_run_logs_into_the_same_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    for step in (1, 2):
        logger = MetricLogger(tmp_path, wandb_project="wmpo-test", config={"seed": 0})
        logger.write(step, {"rollout/success": 0.5})
        logger.close()
    run_id = (tmp_path / "wandb_run_id").read_text().strip()
    runs = list((tmp_path / "wandb").glob(f"offline-run-*-{run_id}"))
    assert runs and all(r.name.endswith(run_id) for r in (tmp_path / "wandb").glob("offline-run-*"))
    assert any(f.stat().st_size > 0 for r in runs for f in r.glob("*.wandb"))


def test_videos_are_written_with_captions(tmp_path):
    import imageio.v3 as iio

    frames = np.zeros((5, 32, 48, 3), np.uint8)
    path = write_video(tmp_path / "v.mp4", frames, caption=[str(i) for i in range(5)])
    video = iio.imread(path)
    assert video.shape[:3] == (5, 32, 48) and video.max() > 50  # the caption drew bright pixels
