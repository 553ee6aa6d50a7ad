#!/usr/bin/env bash
# One prepared check of the rollout's parts on one GPU, with random weights at the released sizes:
#   1. STDiT3-XL/2 denoising one 8-frame chunk at batch 1/8/16, context recomputed vs cached (ms, TFLOP/s, MFU),
#      and the SDXL VAE decode of one chunk; then the cached sampler with the denoiser compiled (torch.compile) at
#      batch 16, its compile time apart;
#   2. VideoMAE-base reward scoring, per-window vs incremental;
#   3. OpenVLA-OFT 7B predict at batch 1/16 and one log_probs forward+backward at batch 8 (time, peak memory);
#   4. one imagined group of 8 trajectories (tiny policy, XL/2 + SDXL, 30 steps): the released sampler and horizon
#      vs this project's defaults, trajectories/s, and how far the trajectories of both modes agree;
#   5. one quickstart trainer iteration on the device.
#     bash scripts/gpu_check.sh            # CUDA, real sizes
#     bash scripts/gpu_check.sh --tiny     # the same steps with tiny sizes on the CPU (tested)
# Each part prints its own table; a failing part stops the check, naming it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

tiny=0
for arg in "$@"; do
  case "$arg" in
    --tiny) tiny=1 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$arg' (known: --tiny)" >&2; exit 2 ;;
  esac
done
export MUJOCO_GL=${MUJOCO_GL:-egl}
py=${PYTHON:-python}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

if ((tiny)); then
  device=cpu
  world_model=(preset=tiny vae=tiny device=cpu dtype=float32 "batches=[1,2]" chunks=1 steps=4 image_size=64)
  compiled=(preset=tiny vae=tiny device=cpu dtype=float32 "batches=[2]" chunks=1 steps=2 image_size=32 compile=default)
  reward=(preset=tiny device=cpu videos=2 frames=40 min_steps=16 image_size=64 repeats=1)
  policy=(preset=tiny device=cpu dtype=float32 "batch_sizes=[1,2]" repeats=1 backward=true backward_batch=2)
  group=(groups=1 repeats=1 device=cpu "overrides=[imagination.max_steps=16,imagination.min_steps=0]")
else
  device=cuda
  "$py" -c 'import sys, torch; torch.cuda.is_available() or sys.exit("gpu_check.sh: no CUDA device (--tiny: CPU)")'
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  world_model=(preset=XL/2 vae=sdxl device=cuda dtype=bfloat16 "batches=[1,8,16]" chunks=3 steps=30 image_size=256)
  compiled=(preset=XL/2 vae=sdxl device=cuda dtype=bfloat16 "batches=[16]" chunks=3 steps=30 image_size=256
    compile=default)
  reward=(preset=base device=cuda videos=8 frames=185 image_size=256 repeats=3)
  policy=(preset=7b device=cuda dtype=bfloat16 "batch_sizes=[1,16]" repeats=3 backward=true backward_batch=8)
  released_sizes=(n_samples=8 imagination.world_model.model_preset=XL/2 imagination.world_model.vae_preset=sdxl
    imagination.world_model.num_sampling_steps=30 imagination.world_model.use_timestep_transform=true
    imagination.image_size=256 imagination.max_steps=184 imagination.min_steps=100)
  group=(groups=1 repeats=2 device=cuda "overrides=[$(IFS=,; echo "${released_sizes[*]}")]")
fi

part() {
  local name=$1
  shift
  printf '\n== %s ==\n' "$name"
  local start=$SECONDS
  if ! "$@"; then
    echo "gpu_check.sh: part '$name' failed (command: $*)" >&2
    exit 1
  fi
  printf '(%s: %d s)\n' "$name" $((SECONDS - start))
}

part "denoiser and VAE decode" "$py" scripts/bench_world_model.py "${world_model[@]}"
part "compiled denoiser" "$py" scripts/bench_world_model.py "${compiled[@]}"
part "reward scoring" "$py" scripts/bench_reward.py "${reward[@]}"
part "policy" "$py" scripts/bench_policy.py "${policy[@]}"
part "imagined group" "$py" scripts/bench_rollout.py "${group[@]}"
part "trainer iteration" "$py" -m wmpo.train --config-name quickstart device="$device" iterations=1 test_freq=0 \
  output="$scratch/quickstart" policy_path="$scratch/quickstart/assets/policy" \
  initial_states="$scratch/quickstart/assets/initial_states" monitors.enable=false
echo
echo "gpu_check.sh: all parts ran"
