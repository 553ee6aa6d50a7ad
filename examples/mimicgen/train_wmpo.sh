#!/usr/bin/env bash
# WMPO on one MimicGen task with the released settings (configs/mimicgen.yaml).
#   bash examples/mimicgen/train_wmpo.sh <task> <budget> [key=value ...]
# Needs: checkpoint_files/SFT_models/<task>, world_models/<task>/P_<budget>, world_models/vae,
# reward_models/videomae_<task>.pth (python download_hf.py --what sft,world_model,vae,reward_model ...) and
# data_files/initial_states/<task> (python scripts/make_initial_states.py task=<task> n=128).
# Multi-GPU: NUM_NODES x NUM_GPUS_PER_NODE Ray workers shard the policy with FSDP2 (each also holds a world model and
# a reward model). For several nodes, start Ray first: launch_head.sh on node 0, launch_worker.sh on the others.
set -euo pipefail
cd "$(dirname "$0")/../.."
TASK=${1:?usage: train_wmpo.sh <task> <budget> [key=value ...]}
BUDGET=${2:?usage: train_wmpo.sh <task> <budget> [key=value ...]}
shift 2
source examples/common.sh
trainer_environment
exec python -m wmpo.train --config-name mimicgen \
  num_workers="$WORKERS" \
  task="$TASK" \
  policy_path="checkpoint_files/SFT_models/$TASK" \
  initial_states="data_files/initial_states/$TASK" \
  output="outputs/wmpo/${TASK}_wmpo_${BUDGET}" \
  imagination.world_model.model_path="checkpoint_files/world_models/$TASK/P_$BUDGET" \
  imagination.reward_model_path="checkpoint_files/reward_models/videomae_$TASK.pth" \
  "$@"
