#!/usr/bin/env bash
# Greedy real-simulator evaluation of a policy on 128 initial states (released evaluate.sh: WMPO_models/<task>/P_128).
#   bash examples/mimicgen/evaluate_policy.sh <task> [policy_dir] [key=value ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
TASK=${1:?usage: evaluate_policy.sh <task> [policy_dir] [key=value ...]}
shift
POLICY=checkpoint_files/WMPO_models/$TASK/P_128
# The second argument is the policy folder unless it is already a key=value setting.
if [[ $# -ge 1 && "$1" != *=* ]]; then
  POLICY=$1
  shift
fi
export MUJOCO_GL=${MUJOCO_GL:-egl}
exec python -m wmpo.evaluate task="$TASK" policy_path="$POLICY" states=128 workers="${NUM_WORKERS:-8}" \
  output="outputs/eval/$TASK" "$@"
