import json

import numpy as np
import pytest
import torch

from wmpo.rl.grpo import policy_loss, valid_token_mask
from wmpo.rl.update import UpdateConfig, slice_inputs, update_policy
from wmpo.trainer import Trainer, rollout_calls
from wmpo.trainer_config import TrainerConfig, load_trainer_config


def quickstart_config(tmp_path, **overrides) -> TrainerConfig:
    settings = {
        "output": tmp_path / "run",
        "policy_path": tmp_path / "assets" / "policy",
        "initial_states": tmp_path / "assets" / "initial_states",
        "test_freq": 0,
        "imagination.max_steps": 16,
        **overrides,
    }
    return load_trainer_config("configs/quickstart.yaml", [f"{key}={value}" for key, value in settings.items()])


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    Trainer(quickstart_config(root, iterations=0))  # writes the tiny policy and samples the initial states
    return root


def state(trainer):
    return {k: v.clone() for k, v in trainer.backend.policy.model.state_dict().items()}


@pytest.mark.sim
def test_resumed_run_matches_the_uninterrupted_one(assets, tmp_path, caplog):
    def config(output, iterations):
        cfg = quickstart_config(assets, iterations=iterations)
        cfg.output = str(tmp_path / output)
        return cfg

    straight = Trainer(config("straight", 2))
    straight.fit()
    first = Trainer(config("resumed", 1))
    first.fit()
    # A crash between logging iteration 2 and checkpointing it leaves a row the resumed run must replace.
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as log:
        log.write(json.dumps({"iteration": 2, "rollout/success": -1.0}) + "\n")
    resumed = Trainer(config("resumed", 2))
    assert resumed.iteration == 1
    resumed.fit()
    iterations = [json.loads(line)["iteration"] for line in (tmp_path / "resumed" / "metrics.jsonl").open()]
    assert iterations == [1, 2]
    a, b = state(straight), state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    def last_record(run):
        record = json.loads((tmp_path / run / "metrics.jsonl").read_text().splitlines()[1])
        return {k: v for k, v in record.items() if not k.startswith(("time/", "time_share/", "perf/"))}

    assert last_record("straight") == last_record("resumed")

    with caplog.at_level("INFO", logger="wmpo"):
        Trainer(config("straight", 2)).fit()
    assert "run complete at iteration 2" in caplog.text
    assert (tmp_path / "resumed" / "checkpoints" / "iteration_000002" / "actor" / "config.json").is_file()


@pytest.mark.sim
def test_evaluations_measure_the_learned_models_fidelity(assets, tmp_path):
    Trainer(quickstart_config(assets, iterations=1, test_freq=1, output=str(tmp_path / "m"),
                              **{"monitors.enable": True})).fit()
    row = json.loads((tmp_path / "m" / "metrics.jsonl").read_text().splitlines()[-1])
    states = row["fidelity/imagined_success_real_success"] + row["fidelity/imagined_success_real_failure"] + row[
        "fidelity/imagined_failure_real_success"] + row["fidelity/imagined_failure_real_failure"]
    assert states == 2 and row["fidelity/real_success"] == row["eval/success_rate"]
    assert 0.0 <= row["fidelity/agreement"] <= 1.0 and row["fidelity/open_loop_psnr"] > 0
    assert row["time/fidelity_s"] > 0 and "fidelity/rm_recall" in row
    shares = {k.split("/")[1]: v for k, v in row.items() if k.startswith("time_share/")}
    assert set(shares) == {"policy", "denoiser", "vae", "reward", "generate_other", "update", "eval", "fidelity"}
    assert all(v > 0 for v in shares.values()) and sum(shares.values()) <= 1.0 + 1e-6
    assert row["perf/denoiser_tflops"] > 0 and "perf/denoiser_mfu" not in row  # no known peak on a CPU
    assert (tmp_path / "m" / "videos" / "iteration_000001" / "open_loop.png").stat().st_size > 0


@pytest.mark.sim
def test_non_finite_update_stops_before_changing_the_parameters(assets, tmp_path):
    trainer = Trainer(quickstart_config(assets, iterations=0, output=str(tmp_path / "x")))
    batch, _ = trainer.generate()
    batch.advantages = torch.full((len(batch),), float("nan"))
    before = state(trainer)
    with pytest.raises(FloatingPointError, match="non-finite policy gradient norm"):
        update_policy(trainer.backend.policy, trainer.backend.optimizer, batch, trainer.cfg.update)
    after = state(trainer)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.sim
def test_sliced_update_equals_whole_trajectory_update(assets, tmp_path):
    trainer = Trainer(quickstart_config(assets, iterations=0, output=str(tmp_path / "x")))
    batch, _ = trainer.generate()
    batch.advantages = advantages = torch.linspace(-1, 1, len(batch))

    def gradients(traj_chunks):
        model = trainer.backend.policy.model
        model.zero_grad(set_to_none=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # step() leaves the weights as they are
        cfg = UpdateConfig(temperature=1.6, ppo_mini_batch_size=len(batch), traj_mini_batch_size=traj_chunks,
                           grad_clip=1e9)
        update_policy(trainer.backend.policy, optimizer, batch, cfg)
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    sliced, whole = gradients(1), gradients(100)
    assert sliced.keys() == whole.keys()
    for name in whole:
        torch.testing.assert_close(sliced[name], whole[name], atol=1e-6, rtol=1e-4)

    # And the whole-trajectory loss is the token mean of the clipped objective, averaged over trajectories.
    losses = []
    for row in range(len(batch)):
        chunks = slice(0, int(batch.num_chunks[row]))
        log_probs, _ = trainer.backend.policy.log_probs(
            slice_inputs(trainer.backend.policy, batch, row, chunks), batch.responses[row, chunks], temperature=1.6
        )
        width = log_probs.numel()
        mask = valid_token_mask(batch.finish_step[row : row + 1], width)
        old = batch.old_log_probs[row : row + 1, :width]
        # Weights unchanged since the rollout: the ratio is 1 and the loss is −advantage on every valid token.
        torch.testing.assert_close(log_probs.reshape(1, -1)[mask], old[mask], atol=1e-5, rtol=0)
        out = policy_loss(log_probs.reshape(1, -1).detach(), old, advantages[row : row + 1], mask)
        if mask.any():
            assert out.loss.item() == pytest.approx(-advantages[row].item(), abs=1e-4)


@pytest.mark.sim
def test_evaluation_reads_trainer_checkpoints_and_collection_feeds_the_world_model(assets, tmp_path):
    import subprocess
    import sys

    from opensora.datasets.shards import index_episodes
    from opensora.datasets.windows import WindowDataset

    cfg = quickstart_config(assets, iterations=1)
    cfg.output = str(tmp_path / "run")
    Trainer(cfg).fit()
    actor = tmp_path / "run" / "checkpoints" / "iteration_000001" / "actor"
    validation = quickstart_config(assets, iterations=1, val_only=True, output=cfg.output)
    validation.evaluation.backend = "builtin"
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    Trainer(validation).fit()  # resumes iteration 1, evaluates, trains nothing, leaves the run's logs alone
    episodes = json.loads((tmp_path / "run" / "val_only" / "iteration_000001" / "eval_results.json").read_text())
    assert len(episodes["episodes"]) == 2 and 0.0 <= episodes["success_rate"] <= 1.0
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == metrics
    assert not (tmp_path / "run" / "checkpoints" / "iteration_000002").exists()
    common = [f"initial_states={cfg.initial_states}", "states=2", "workers=2", "backend=builtin"]
    subprocess.run(
        ["bash", "examples/mimicgen/square/evaluate.sh", str(actor), *common, f"output={tmp_path / 'eval'}"],
        check=True, capture_output=True,
    )
    results = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert len(results["episodes"]) == 2 and 0.0 <= results["success_rate"] <= 1.0
    subprocess.run(
        [sys.executable, "scripts/collect_rollouts.py", "task=square", f"policy_path={actor}", *common,
         f"output={tmp_path / 'rollouts'}"],
        check=True, capture_output=True,
    )
    episodes = index_episodes(tmp_path / "rollouts")
    assert len(episodes) == 2 and episodes[0].video.shape[1:] == (256, 256, 3)
    windows = WindowDataset(episodes, np.full(7, -1, np.float32), np.full(7, 1, np.float32))
    assert len(windows) == sum(e.finish_step - 7 for e in episodes)
    rollouts, stats = tmp_path / "rollouts", tmp_path / "dataset_statistics.json"
    subprocess.run([sys.executable, "scripts/compute_statistics.py", f"shards=[{rollouts}]", f"output={stats}"],
                   check=True, capture_output=True)
    subprocess.run(
        [sys.executable, "-m", "opensora.train", "--config", "configs/world_model/tiny.yaml", f"data.shards=[{rollouts}]",
         f"data.stats={stats}", "data.val_episodes=0", "data.batch_size=1", "max_steps=2", "model.preset=tiny",
         "model.vae_preset=tiny", f"output={tmp_path / 'world_model'}"],
        check=True, capture_output=True,
    )
    record = json.loads((tmp_path / "world_model" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["step"] == 2 and np.isfinite(record["loss"])
    assert (tmp_path / "world_model" / "checkpoints" / "step_0000002").is_dir()


def test_released_settings_config_resolves():
    cfg = load_trainer_config("configs/mimicgen.yaml")
    assert (cfg.train_batch_size, cfg.n_samples, cfg.temperature, cfg.lr) == (64, 8, 1.6, 5e-6)
    assert (cfg.update.clip_ratio_low, cfg.update.clip_ratio_high, cfg.update.ppo_mini_batch_size) == (0.2, 0.28, 128)
    assert cfg.imagination.world_model.model_preset == "XL/2" and cfg.imagination.rm_threshold is None
    assert cfg.offload_optimizer


def test_generation_calls_cover_the_batch_and_feed_every_worker():
    def calls(batch, per_call, workers):
        return rollout_calls(TrainerConfig(train_batch_size=batch, rollout_batch_size=per_call, num_workers=workers))

    assert calls(64, 16, 0) == [16, 16, 16, 16] and calls(20, 16, 0) == [16, 4]
    assert calls(64, 16, 32) == [32, 32] and calls(64, 16, 24) == [24, 24, 24] and calls(4, 16, 2) == [4]


@pytest.mark.parametrize("task,budget,offload", [("square", 128, True), ("coffee", 1280, False)])
def test_training_scripts_resolve_the_released_settings(task, budget, offload):
    import os
    import subprocess

    import yaml

    env = {**os.environ, "NUM_NODES": "2", "NUM_GPUS_PER_NODE": "4"}
    out = subprocess.run(["bash", f"examples/mimicgen/{task}/train_wmpo_{budget}.sh", "--cfg", "job"],
                         check=True, capture_output=True, text=True, env=env)
    cfg = yaml.safe_load(out.stdout)
    assert (cfg["task"], cfg["num_workers"], cfg["offload_optimizer"]) == (task, 8, offload)
    assert cfg["imagination"]["world_model"]["model_path"] == f"checkpoint_files/world_models/{task}/P_{budget}"
    bad = subprocess.run(["bash", f"examples/mimicgen/{task}/train_wmpo_{budget}.sh", "num_workerz=2", "--cfg", "job"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "num_workerz" in bad.stderr


@pytest.mark.sim
@pytest.mark.slow
def test_two_fsdp2_ray_workers_update_like_one_process(assets, tmp_path):
    from dataclasses import asdict

    from wmpo.distributed.dispatch import split_rows
    from wmpo.distributed.worker_group import WorkerGroup
    from wmpo.rl.grpo import grpo_advantages
    from wmpo.workers.policy_worker import PolicyWorker

    cfg = quickstart_config(assets, iterations=0)
    cfg.output = str(tmp_path / "single")
    trainer = Trainer(cfg)
    initial = state(trainer)
    batch, _ = trainer.generate()
    size = len(batch) - len(batch) % 2
    assert size >= 2
    batch = batch[:size]
    cfg.update.ppo_mini_batch_size = size  # one optimizer step over the whole batch in both runs
    batch.advantages = grpo_advantages(batch.complete.float() * 5.0, batch.group)
    update_policy(trainer.backend.policy, trainer.backend.optimizer, batch, cfg.update)
    single = state(trainer)

    group = WorkerGroup(PolicyWorker, 2, use_gpu=False, cpus_per_worker=1.0, config=asdict(cfg))
    try:
        group.call_each("update", [(shard,) for shard in split_rows(batch, 2)])
        sharded = group.call_all("full_state")[0]["model"]
    finally:
        group.shutdown()
    moved = max((single[k].float() - initial[k].float()).abs().max().item() for k in single)
    differs = max((sharded[k].float() - single[k].float()).abs().max().item() for k in single)
    print(f"largest parameter change {moved:.2e}; largest difference FSDP2 x2 vs one process {differs:.2e}")
    assert moved > 1e-5 and differs <= 1e-5


@pytest.mark.sim
@pytest.mark.slow
def test_trainer_runs_with_two_ray_workers(assets, tmp_path):
    cfg = quickstart_config(assets, iterations=1, num_workers=2, test_freq=1, cpus_per_worker=0.5)
    cfg.output = str(tmp_path / "ray")
    trainer = Trainer(cfg)
    trainer.fit()
    record = json.loads((tmp_path / "ray" / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["iteration"] == 1 and "eval/success_rate" in record
    actor = tmp_path / "ray" / "checkpoints" / "iteration_000001" / "actor"
    from wmpo.policy import load_policy

    assert list((tmp_path / "ray" / "videos" / "iteration_000001").glob("imagined_*.mp4"))
    sharded = {k: v.float() for k, v in load_policy(actor, "square_d0_300_demos").model.state_dict().items()}
    # Checkpoints move between the sharded workers and a single process, both ways (one optimizer-state format).
    local = Trainer(quickstart_config(assets, iterations=2, output=str(tmp_path / "ray")))
    assert local.iteration == 1 and len(local.backend.optimizer.state) > 0
    assert all(torch.equal(v.float(), sharded[k]) for k, v in state(local).items())
    local.fit()
    back = Trainer(quickstart_config(assets, iterations=2, num_workers=2, cpus_per_worker=0.5,
                                     output=str(tmp_path / "ray")))
    try:
        assert back.iteration == 2
        gathered = back.backend.group.call_all("full_state")[0]
    finally:
        back.backend.close()
    final = state(local)
    assert all(torch.equal(gathered["model"][k].float(), final[k].float()) for k in final)
    expected = torch.load(tmp_path / "ray" / "checkpoints" / "iteration_000002" / "optimizer.pt", weights_only=False)
    name = next(iter(expected["state"]))
    assert torch.equal(gathered["optimizer"]["state"][name]["exp_avg"], expected["state"][name]["exp_avg"])


@pytest.mark.sim
def test_simulator_rollouts_record_what_the_update_needs(assets, tmp_path):
    cfg = quickstart_config(assets, iterations=0, n_samples=2, **{"imagination.enable": False})
    cfg.output = str(tmp_path / "sim")
    trainer = Trainer(cfg)
    try:
        batch = trainer._simulate([0], [0], seed=5)
    finally:
        trainer.sim_runner.close()
    assert len(batch) == 2 and batch.frames.shape[2:] == (256, 256, 3)
    assert batch.finish_step.tolist() == [184, 184] and batch.num_chunks.tolist() == [23, 23]
    policy = trainer.backend.policy
    chunks = slice(0, 23)
    with torch.no_grad():
        recomputed, _ = policy.log_probs(slice_inputs(policy, batch, 1, chunks), batch.responses[1, chunks], 1.6)
    torch.testing.assert_close(recomputed.reshape(-1), batch.old_log_probs[1], atol=1e-5, rtol=0)


@pytest.mark.sim
@pytest.mark.slow
def test_simulator_rollouts_on_two_ray_workers_match_one_process(assets, tmp_path):
    def simulate(num_workers):
        cfg = quickstart_config(assets, iterations=0, n_samples=2, num_workers=num_workers, cpus_per_worker=0.5,
                                output=str(tmp_path / f"sim{num_workers}"), **{"imagination.enable": False})
        trainer = Trainer(cfg)
        try:
            batch = trainer._simulate([0], [0], seed=5)
            one_frame = trainer.backend.predict(trainer.states.frames[:1], [trainer.task.prompt])  # a worker idles
            return trainer, batch, one_frame
        finally:
            if getattr(trainer, "sim_runner", None) is not None:
                trainer.sim_runner.close()
            trainer.backend.close()

    local, single, single_action = simulate(0)
    _, sharded, sharded_action = simulate(2)
    assert sharded.batch_size == single.batch_size and sharded_action.shape == single_action.shape == (1, 8, 7)
    np.testing.assert_allclose(sharded_action, single_action, atol=1e-6)
    assert torch.equal(sharded.responses[:, 0], single.responses[:, 0])  # same per-row seeds, same draws
    torch.testing.assert_close(sharded.old_log_probs[:, :56], single.old_log_probs[:, :56], atol=1e-5, rtol=0)
    policy, chunks = local.backend.policy, slice(0, int(sharded.num_chunks[0]))
    with torch.no_grad():
        recomputed, _ = policy.log_probs(slice_inputs(policy, sharded, 0, chunks), sharded.responses[0, chunks], 1.6)
    torch.testing.assert_close(recomputed.reshape(-1), sharded.old_log_probs[0, : recomputed.numel()], atol=1e-5,
                               rtol=0)


@pytest.mark.gpu
@pytest.mark.sim
def test_one_iteration_on_cuda_in_a_nccl_worker_and_in_process(assets, tmp_path):
    """The device paths: bf16 autocast, bf16 world model, FSDP2 over NCCL, optimizer offload, checkpoint."""
    for workers in (1, 0):
        output = tmp_path / f"cuda{workers}"
        cfg = quickstart_config(assets, iterations=1, num_workers=workers, device="cuda", offload_optimizer=True,
                                test_freq=1, output=output)
        Trainer(cfg).fit()
        record = json.loads((output / "metrics.jsonl").read_text().splitlines()[-1])
        assert record["iteration"] == 1 and np.isfinite(record["actor/grad_norm"]) and "eval/success_rate" in record
        assert (output / "checkpoints" / "iteration_000001" / "actor" / "config.json").is_file()
        resumed = Trainer(cfg)  # rank 0 reads the checkpoint and broadcasts it
        assert resumed.iteration == 1
        if workers == 0:
            states = resumed.backend.optimizer.state.values()
            assert states and all(s["exp_avg"].device.type == "cpu" for s in states)
        resumed.backend.close()


@pytest.mark.sim
def test_sigterm_stops_after_the_iteration_with_a_checkpoint(assets, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    output = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "wmpo.train", "--config-name", "quickstart", "iterations=50", "test_freq=0",
         f"output={output}", f"policy_path={assets / 'assets' / 'policy'}",
         f"initial_states={assets / 'assets' / 'initial_states'}", "imagination.max_steps=16"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (output / "metrics.jsonl").is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 2 and "stopped by SIGTERM after iteration" in err and "Traceback" not in err
    rows = [json.loads(line)["iteration"] for line in (output / "metrics.jsonl").open()]
    newest = sorted((output / "checkpoints").iterdir())[-1]
    assert json.loads((newest / "state.json").read_text())["iteration"] == rows[-1]


@pytest.mark.sim
@pytest.mark.slow
def test_a_dead_policy_worker_is_replaced_and_the_run_ends_as_an_uninterrupted_one(assets, tmp_path, monkeypatch,
                                                                                   caplog):
    import os
    import signal

    from wmpo.policy import load_policy
    from wmpo.trainer_restarts import fit_with_restarts

    def run(name):
        cfg = quickstart_config(assets, iterations=2, num_workers=2, cpus_per_worker=0.5, output=str(tmp_path / name))
        fit_with_restarts(cfg)
        actor = tmp_path / name / "checkpoints" / "iteration_000002" / "actor"
        return load_policy(actor, "square_d0_300_demos").model.state_dict()

    clean = run("clean")
    original = Trainer.generate
    killed = []

    def generate_killing_rank_1(self):
        if self.iteration == 1 and not killed:  # iteration 2 starts: its workers are mid-iteration when one dies
            killed.append(self.backend.group.where[1][1])
            os.kill(killed[0], signal.SIGKILL)
        return original(self)

    monkeypatch.setattr(Trainer, "generate", generate_killing_rank_1)
    with caplog.at_level("WARNING", logger="wmpo"):
        faulted = run("faulted")
    assert killed and f"PolicyWorker rank 1 (node" in caplog.text and f"pid {killed[0]})" in caplog.text
    assert "restart 1 of 3" in caplog.text and "iteration_000001" in caplog.text
    assert all(torch.equal(faulted[k], clean[k]) for k in clean)
    rows = [json.loads(line)["iteration"] for line in (tmp_path / "faulted" / "metrics.jsonl").open()]
    assert rows == [1, 2]


def test_restarts_give_up_after_max_restarts(assets, tmp_path, monkeypatch):
    from wmpo.distributed.worker_group import WorkerLost
    from wmpo.trainer_restarts import RestartsExhausted, fit_with_restarts

    attempts = []

    def always_lost(self):
        attempts.append(self.cfg.resume)
        raise WorkerLost("PolicyWorker rank 0 (node n, pid 1) died during generate")

    monkeypatch.setattr(Trainer, "fit", always_lost)
    with pytest.raises(RestartsExhausted, match=r"rank 0.*gave up after 2 restarts \(max_restarts=2\)"):
        fit_with_restarts(quickstart_config(assets, iterations=1, max_restarts=2, output=str(tmp_path / "r")))
    assert len(attempts) == 3
