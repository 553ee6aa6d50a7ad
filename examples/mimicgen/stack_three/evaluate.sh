#!/usr/bin/env bash
# Evaluate a stack_three policy (default: the released WMPO_models/stack_three/P_128) on 128 real episodes.
exec bash "$(dirname "$0")/../evaluate_policy.sh" stack_three "$@"
