#!/usr/bin/env bash
# Fine-tune the STDiT3-XL/2 world model of one task on its real-rollout budget with the released settings.
#   bash examples/opensora/train_world_model.sh <task> <budget> [--dry-run] [key=value ...]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and MASTER_PORT) on every node; GPUS_PER_NODE defaults to all.
set -euo pipefail
cd "$(dirname "$0")/../.."

TASK=${1:?usage: train_world_model.sh <task> <budget> [--dry-run] [key=value ...]}
BUDGET=${2:?usage: train_world_model.sh <task> <budget> [--dry-run] [key=value ...]}
shift 2

source examples/common.sh
DATA=$(budget_rollouts "$TASK" "$BUDGET")

NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(python -c "import torch; print(max(torch.cuda.device_count(), 1))")}

ARGS=(
  --config configs/world_model/train_mimicgen.yaml
  "data.shards=[${DATA}]"
  "data.stats=data_files/statistics/${TASK}/dataset_statistics.json"
  "output=outputs/world_models/${TASK}/P_${BUDGET}"
)

if [[ " $* " == *" --dry-run "* ]]; then
  exec python -m opensora.train "${ARGS[@]}" "$@"
fi
exec torchrun --nnodes "$NNODES" --node_rank "$NODE_RANK" --nproc_per_node "$GPUS_PER_NODE" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" -m opensora.train "${ARGS[@]}" "$@"
