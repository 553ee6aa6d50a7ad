#!/usr/bin/env bash
# WMPO on coffee with the world model fine-tuned on 1280 real rollouts (released settings; this run kept the
# optimizer states on the GPU).
exec bash "$(dirname "$0")/../train_wmpo.sh" coffee 1280 offload_optimizer=false "$@"
