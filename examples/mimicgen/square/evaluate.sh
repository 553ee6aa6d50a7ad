#!/usr/bin/env bash
# Evaluate a square policy (default: the released WMPO_models/square/P_128) on 128 real episodes.
exec bash "$(dirname "$0")/../evaluate_policy.sh" square "$@"
