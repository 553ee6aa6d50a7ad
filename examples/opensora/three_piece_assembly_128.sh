#!/usr/bin/env bash
# World model for three_piece_assembly from 128 real rollouts (see train_world_model.sh for NNODES / GPUS_PER_NODE / MASTER_ADDR).
exec bash "$(dirname "$0")/train_world_model.sh" three_piece_assembly 128 "$@"
