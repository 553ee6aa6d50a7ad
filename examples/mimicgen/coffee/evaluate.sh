#!/usr/bin/env bash
# Evaluate a coffee policy (default: the released WMPO_models/coffee/P_128) on 128 real episodes.
exec bash "$(dirname "$0")/../evaluate_policy.sh" coffee "$@"
