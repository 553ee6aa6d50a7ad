"""The WMPO trainer's configuration: the Hydra schema of ``configs/*.yaml`` (one docstring per field), shared by the
driver and the Ray workers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from opensora.world_model import WorldModelSpec
from wmpo.rl.update import UpdateConfig


@dataclass
class ImaginationConfig:
    enable: bool = True
    """False: the GRPO-in-simulator baseline (rollouts in the real simulator, no world or reward model)."""
    world_model: WorldModelSpec = field(default_factory=WorldModelSpec)
    """World-model weights and sampler."""
    reward_model_path: str | None = None
    """videomae_<task>.pth; None = a randomly initialized classifier (smoke tests only)."""
    reward_preset: str = "base"
    """Reward-model size."""
    rm_threshold: float | None = None
    """Success threshold; None = the task's released value."""
    image_size: int = 256
    """Frame size of imagination (first frames are resized to it)."""
    max_steps: int | None = None
    """Imagined horizon in actions; None = the task's max_steps."""
    min_steps: int = 100
    """No success window may end before min_steps + 8 frames."""
    stop_on_success: bool = True
    """Stop generating a trajectory at its first success window (False: the released full-horizon behaviour)."""
    slots: int = 0
    """Trajectories a worker imagines together (the denoiser's batch); 0 = its whole generation round at once. With
    fewer, the slot of a trajectory that finished is refilled at once with the round's next one (continuous
    batching), which bounds memory while keeping the batch full (per-trajectory generators: a trajectory changes
    only through float rounding)."""
    count_last_window: bool = False
    """Let a success window ending at the horizon's last frame count (the released rule ignores it)."""
    jpeg_resize: bool = True
    """Pass every frame the policy sees in imagination through a JPEG round trip and the lanczos3 resize to its input
    size, as the released rollout does (the policies were trained on such frames); real rollouts never do."""


@dataclass
class EvalConfig:
    states: int = 128
    """Evaluation initial states (the first N of the set)."""
    workers: int = 8
    """Parallel simulator processes."""
    backend: str = "auto"
    """Simulation backend (auto, builtin, mimicgen)."""
    videos: int = 4
    """Episodes per evaluation saved as mp4."""
    initial_states: str | None = None
    """Initial-state folder to evaluate on (held-out states); None = the training states."""


@dataclass
class MonitorConfig:
    enable: bool = False
    """At each real evaluation, measure how well the world model and the reward model stand in for the simulator on
    the evaluation states (``fidelity/*`` metrics, ``open_loop.png`` beside the evaluation videos); needs
    imagination and the policy in the driver process (num_workers=0)."""
    replay_episodes: int = 2
    """Real evaluation episodes replayed open loop in the world model."""


@dataclass
class DPOConfig:
    shards: list[str] = field(default_factory=list)
    """Episode shards (files, folders or globs) of the real rollouts to learn preferences from (algorithm=dpo)."""
    beta: float = 0.1
    """Scale of the implicit reward β·(log π − log π_ref)."""
    cross_state: bool = True
    """Also pair successes and failures of different initial states when their states have a single outcome."""


@dataclass
class CoevolveConfig:
    every: int = 0
    """Refresh the world model after every this many iterations (0 = never: the world model stays frozen)."""
    trajectories: int = 32
    """Real trajectories the current policy collects per refresh (training states, rollout temperature)."""
    wm_steps: int = 200
    """World-model optimizer steps per refresh, over the source run's data and every round collected so far."""
    world_model_run: str | None = None
    """The world-model training run (folder with config.yaml and checkpoints/) whose newest checkpoint the refreshes
    continue; its EMA weights should be the ones ``imagination.world_model.model_path`` names."""


@dataclass
class TrainerConfig:
    task: str = "square"
    """Task name (coffee, square, stack_three, three_piece_assembly)."""
    policy_path: str = "checkpoint_files/SFT_models/square"
    """Policy checkpoint directory to start from."""
    initial_states: str = "data_files/initial_states/square"
    """Initial-state folder (states + first frames) from scripts/make_initial_states.py."""
    output: str = "outputs/wmpo/run"
    """Run directory."""
    seed: int = 0
    """Seed of the state order and of every rollout."""
    algorithm: str = "grpo"
    """grpo: on-policy GRPO on rollouts (imagined, or simulated when imagination is off); dpo: offline trajectory
    DPO on recorded real rollouts (``dpo.shards``), the frozen starting policy as reference."""
    iterations: int = 100
    """Policy updates."""
    train_batch_size: int = 64
    """Groups (initial states) per update."""
    n_samples: int = 8
    """Imagined trajectories per initial state."""
    accuracy_lower_bound: float = 0.1
    """Groups with a lower success rate are dropped."""
    accuracy_upper_bound: float = 0.9
    """Groups with a higher success rate are dropped."""
    max_generation_rounds: int = 8
    """Rounds of generation per iteration before updating with the groups found so far."""
    rollout_batch_size: int = 16
    """Initial states imagined together (each with n_samples trajectories); raised to num_workers when smaller."""
    temperature: float = 1.6
    """Sampling temperature of imagined rollouts (and of the log-probs)."""
    lr: float = 5e-6
    """AdamW learning rate (used from the first update on)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    update: UpdateConfig = field(default_factory=UpdateConfig)
    """GRPO update settings."""
    imagination: ImaginationConfig = field(default_factory=ImaginationConfig)
    """Imagined environment."""
    dpo: DPOConfig = field(default_factory=DPOConfig)
    """Preference data and loss of algorithm=dpo (its iterations take ``train_batch_size`` pairs, its optimizer
    steps ``update.ppo_mini_batch_size`` pairs)."""
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    """Real-simulator evaluation."""
    monitors: MonitorConfig = field(default_factory=MonitorConfig)
    """World-model fidelity monitors at each real evaluation."""
    coevolve: CoevolveConfig = field(default_factory=CoevolveConfig)
    """Policy–world-model co-evolution: periodic real collection and world-model fine-tuning during WMPO."""
    test_freq: int = 4
    """Iterations between real evaluations (0 = never; also run after the last iteration)."""
    save_freq: int = 1
    """Iterations between checkpoints (the last iteration is always saved)."""
    keep_last: int = 3
    """Checkpoints kept on disk."""
    resume: str = "auto"
    """auto (latest checkpoint in output), none, or a checkpoint directory."""
    max_restarts: int = 3
    """Times a run whose Ray policy worker died restarts its workers and resumes from its newest checkpoint."""
    device: str = "auto"
    """cpu, cuda, or auto."""
    bf16: bool = True
    """On CUDA: bf16 autocast for the policy, bf16 world model and VAE."""
    video_groups: int = 1
    """Imagined groups saved as mp4 per iteration."""
    tensorboard: bool = False
    """Write TensorBoard event files."""
    wandb_project: str | None = None
    """Log to this Weights & Biases project (needs WANDB_API_KEY in the environment)."""
    num_workers: int = 0
    """Ray policy workers (FSDP2 data parallel; one GPU each with CUDA); 0 keeps everything in this process."""
    cpus_per_worker: float = 1.0
    """CPUs reserved per Ray worker."""
    offload_optimizer: bool = False
    """Keep AdamW states in CPU memory outside the update (frees accelerator memory for rollouts)."""
    val_only: bool = False
    """Only evaluate the policy (the resumed checkpoint's, else policy_path's) in the real simulator and stop."""
    create_missing_assets: bool = False
    """Quickstart: write a tiny random policy and sample initial states when their paths do not exist yet."""


def load_trainer_config(path: str | Path, overrides: list[str] = ()) -> TrainerConfig:
    """A Hydra config file of ``configs/`` plus ``key=value`` overrides, without Hydra (scripts and tests)."""
    from omegaconf import OmegaConf

    raw = OmegaConf.load(path)
    for key in ("hydra", "defaults"):
        raw.pop(key, None)
    merged = OmegaConf.merge(OmegaConf.structured(TrainerConfig), raw, OmegaConf.from_dotlist(list(overrides)))
    return OmegaConf.to_object(merged)


def needs_imagination(cfg: TrainerConfig) -> bool:
    """Whether policy workers must hold a world model and a reward model."""
    return cfg.algorithm == "grpo" and cfg.imagination.enable and not cfg.val_only
