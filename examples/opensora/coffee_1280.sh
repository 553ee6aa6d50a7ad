#!/usr/bin/env bash
# World model for coffee from 1280 real rollouts (see train_world_model.sh for NNODES / GPUS_PER_NODE / MASTER_ADDR).
exec bash "$(dirname "$0")/train_world_model.sh" coffee 1280 "$@"
