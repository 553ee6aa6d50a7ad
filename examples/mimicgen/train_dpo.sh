#!/usr/bin/env bash
# The DPO baseline on one MimicGen task: offline trajectory DPO on the real-rollout budget the world model of that
# budget is trained on, from the released SFT policy (configs/mimicgen.yaml with algorithm=dpo; no world or reward
# model is loaded).
#   bash examples/mimicgen/train_dpo.sh <task> <budget> [key=value ...]
# Needs: checkpoint_files/SFT_models/<task>, the budget's rollouts (python download_hf.py --what sft,data ..., or
# your own from scripts/collect_rollouts.py via dpo.shards=[...]) and data_files/initial_states/<task> for the real
# evaluations. Multi-GPU as in train_wmpo.sh (NUM_NODES x NUM_GPUS_PER_NODE Ray workers, FSDP2).
set -euo pipefail
cd "$(dirname "$0")/../.."
TASK=${1:?usage: train_dpo.sh <task> <budget> [key=value ...]}
BUDGET=${2:?usage: train_dpo.sh <task> <budget> [key=value ...]}
shift 2
source examples/common.sh
DATA=$(budget_rollouts "$TASK" "$BUDGET")
trainer_environment
# 32 iterations of 16 pairs, one optimizer step each, evaluated every 4: a few passes over a 128-rollout budget's
# pairs and part of one over a 1280-rollout budget's (see docs/dpo.md).
exec python -m wmpo.train --config-name mimicgen \
  algorithm=dpo \
  num_workers="$WORKERS" \
  task="$TASK" \
  policy_path="checkpoint_files/SFT_models/$TASK" \
  initial_states="data_files/initial_states/$TASK" \
  output="outputs/dpo/${TASK}_dpo_${BUDGET}" \
  "dpo.shards=[$DATA]" \
  iterations=32 \
  train_batch_size=16 \
  update.ppo_mini_batch_size=16 \
  test_freq=4 \
  save_freq=4 \
  "$@"
