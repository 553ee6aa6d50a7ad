#!/usr/bin/env bash
# Join a worker node to the Ray head started by launch_head.sh:
#   MASTER_ADDR=<head ip> [RAY_PORT=10000] [NUM_GPUS_PER_NODE=...] [NUM_CPUS_PER_NODE=...] bash launch_worker.sh
set -euo pipefail
: "${MASTER_ADDR:?set MASTER_ADDR to the head node's address}"
args=(--address "$MASTER_ADDR:${RAY_PORT:-10000}")
[ -n "${NUM_GPUS_PER_NODE:-}" ] && args+=(--num-gpus "$NUM_GPUS_PER_NODE")
[ -n "${NUM_CPUS_PER_NODE:-}" ] && args+=(--num-cpus "$NUM_CPUS_PER_NODE")
export MUJOCO_GL="${MUJOCO_GL:-egl}"
ray start "${args[@]}"
