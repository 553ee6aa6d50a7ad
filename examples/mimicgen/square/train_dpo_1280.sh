#!/usr/bin/env bash
# The DPO baseline on square from the released SFT policy, on the 1280-rollout real budget.
exec bash "$(dirname "$0")/../train_dpo.sh" square 1280 "$@"
