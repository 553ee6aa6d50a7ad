#!/usr/bin/env bash
# The DPO baseline on three_piece_assembly from the released SFT policy, on the 1280-rollout real budget.
exec bash "$(dirname "$0")/../train_dpo.sh" three_piece_assembly 1280 "$@"
