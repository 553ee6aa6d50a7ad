# Sourced by the example scripts.

# budget_rollouts <task> <budget>: the released real-rollout folder of a task's budget.
budget_rollouts() {
  case "$1/$2" in
    square/1280) echo data_files/example_rollouts/square_1280_demos ;;  # the released square-1280 set has no _dpo suffix
    */1280) echo "data_files/example_rollouts/${1}_1280_demos_dpo" ;;
    */128) echo "data_files/example_rollouts/${1}_128_demos" ;;
    *) echo "budget must be 128 or 1280, got $2" >&2; return 2 ;;
  esac
}

# trainer_environment: the environment the trainer runs in, and WORKERS = NUM_NODES x NUM_GPUS_PER_NODE Ray policy
# workers (0, everything in the driver process, for a single GPU).
trainer_environment() {
  export TOKENIZERS_PARALLELISM=true PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True MUJOCO_GL=${MUJOCO_GL:-egl}
  WORKERS=$(( ${NUM_NODES:-1} * ${NUM_GPUS_PER_NODE:-1} ))
  (( WORKERS > 1 )) || WORKERS=0
}
