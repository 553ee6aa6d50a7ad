#!/usr/bin/env bash
# WMPO on stack_three with the world model fine-tuned on 128 real rollouts (released settings).
exec bash "$(dirname "$0")/../train_wmpo.sh" stack_three 128 "$@"
