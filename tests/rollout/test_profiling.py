import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from opensora.flops import chunk_flops
from opensora.models.stdit3 import STDiT3, preset
from opensora.schedulers.rflow import RFlow, RFlowConfig
from opensora.world_model import WorldModel, WorldModelSpec
from wmpo.benchmarking import flops_of
from wmpo.imagination import ImaginedEnv
from wmpo.policy import load_policy
from wmpo.policy.tiny import write_tiny_checkpoint
from wmpo.reward import build_reward_model
from wmpo.rollout.imagined import imagine_groups
from wmpo.rollout.profiling import PHASES, GenerationProfile, profile_metrics, time_shares


@pytest.mark.parametrize("use_cache", [True, False])
def test_config_derived_chunk_flops_equal_a_counted_real_run(use_cache):
    torch.manual_seed(0)
    model = STDiT3(preset("tiny")).eval()
    channels = model.config.in_channels
    context, noise = torch.randn(3, channels, 4, 6, 8), torch.randn(3, channels, 8, 6, 8)
    actions = torch.rand(3, 8, 7)
    scheduler = RFlow(RFlowConfig(num_sampling_steps=2))
    # The math backend runs attention as matrix products the counter sees (the CPU's fused kernel it does not).
    with sdpa_kernel(SDPBackend.MATH), torch.no_grad():
        counted = flops_of(lambda: scheduler.sample(model, context, actions, noise, 48, 64, use_cache=use_cache))
    derived = chunk_flops(model.config, (channels, 4, 6, 8), chunk=8, steps=2, use_cache=use_cache, batch=3)
    assert derived == counted > 0


def test_profile_times_every_phase_counts_denoiser_flops_and_restores_the_calls(tmp_path):
    torch.manual_seed(0)
    spec = WorldModelSpec(model_preset="tiny", vae_preset="tiny", num_sampling_steps=2)
    env = ImaginedEnv(WorldModel.build(spec), build_reward_model("tiny"), 2.0, max_steps=16, min_steps=0)
    policy = load_policy(write_tiny_checkpoint(tmp_path / "policy"), "square_d0_300_demos")
    profile = GenerationProfile(torch.device("cpu"))
    first = torch.randint(0, 256, (1, 32, 32, 3), dtype=torch.uint8)
    with profile.measuring(policy, env):
        batch = imagine_groups(policy, env, first, [0], [0], 2, "square", 1.6, seed=0)
    profile.add_denoiser_work(env, int(batch.num_chunks.sum()))
    assert "predict" not in vars(env.wm) and "predict" not in vars(policy)
    record = profile.take()
    assert all(record[f"{phase}_s"] > 0 for phase in PHASES)
    latent = env.wm.vae.latent_channels, 4, 32 // env.wm.vae.downsample, 32 // env.wm.vae.downsample
    rows = int(batch.num_chunks.sum())  # one denoiser row per trajectory and chunk
    assert record["denoiser_flops"] == rows * chunk_flops(env.wm.model.config, latent, 8, 2, True)
    assert record["peak_tflops"] == 0.0 and profile.take()["denoiser_s"] == 0.0  # taken: reset


def test_profile_metrics_average_processes_and_give_mfu_only_with_a_known_peak():
    one = {"policy_s": 1.0, "denoiser_s": 2.0, "vae_s": 0.5, "reward_s": 0.1, "denoiser_flops": 4e12,
           "peak_tflops": 0.0}
    two = {**one, "policy_s": 3.0, "denoiser_s": 4.0, "denoiser_flops": 4e12}
    metrics = profile_metrics([one, two])
    assert metrics["time/policy_s"] == 2.0 and metrics["time/denoiser_s"] == 3.0
    assert metrics["perf/denoiser_tflops"] == pytest.approx((2.0 + 1.0) / 2)
    assert "perf/denoiser_mfu" not in metrics
    on_gpus = profile_metrics([{**one, "peak_tflops": 4.0}, {**two, "peak_tflops": 4.0}])
    assert on_gpus["perf/denoiser_mfu"] == pytest.approx((0.5 + 0.25) / 2)


def test_time_shares_split_the_iteration():
    metrics = {"time/policy_s": 1.0, "time/denoiser_s": 4.0, "time/vae_s": 1.0, "time/reward_s": 0.5,
               "time/generate_s": 7.0, "time/update_s": 2.0, "time/eval_s": 1.0}
    shares = time_shares(metrics, 10.0)
    assert shares["time_share/denoiser"] == 0.4 and shares["time_share/generate_other"] == pytest.approx(0.05)
    assert shares["time_share/update"] == 0.2 and "time_share/fidelity" not in shares
    assert sum(v for k, v in shares.items() if k.startswith("time_share/")) == pytest.approx(1.0)
    baseline = time_shares({"time/generate_s": 3.0, "time/update_s": 1.0}, 4.0)
    assert baseline["time_share/generate_other"] == 0.75 and "time_share/policy" not in baseline
