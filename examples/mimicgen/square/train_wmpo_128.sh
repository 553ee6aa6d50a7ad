#!/usr/bin/env bash
# WMPO on square with the world model fine-tuned on 128 real rollouts (released settings).
exec bash "$(dirname "$0")/../train_wmpo.sh" square 128 "$@"
