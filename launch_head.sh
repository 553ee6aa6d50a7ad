#!/usr/bin/env bash
# Start the Ray head node of a multi-node run. Override with environment variables:
#   RAY_PORT (10000), NUM_GPUS_PER_NODE (all visible), NUM_CPUS_PER_NODE (all)
set -euo pipefail
args=(--head --port "${RAY_PORT:-10000}" --include-dashboard=false)
[ -n "${NUM_GPUS_PER_NODE:-}" ] && args+=(--num-gpus "$NUM_GPUS_PER_NODE")
[ -n "${NUM_CPUS_PER_NODE:-}" ] && args+=(--num-cpus "$NUM_CPUS_PER_NODE")
export MUJOCO_GL="${MUJOCO_GL:-egl}"
ray start "${args[@]}"
