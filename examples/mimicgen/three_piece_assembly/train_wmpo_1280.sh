#!/usr/bin/env bash
# WMPO on three_piece_assembly with the world model fine-tuned on 1280 real rollouts (released settings).
exec bash "$(dirname "$0")/../train_wmpo.sh" three_piece_assembly 1280 "$@"
