#!/usr/bin/env bash
# The DPO baseline on coffee from the released SFT policy, on the 1280-rollout real budget.
exec bash "$(dirname "$0")/../train_dpo.sh" coffee 1280 "$@"
