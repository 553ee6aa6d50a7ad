#!/usr/bin/env bash
# Evaluate a three_piece_assembly policy (default: the released WMPO_models/three_piece_assembly/P_128) on 128 real episodes.
exec bash "$(dirname "$0")/../evaluate_policy.sh" three_piece_assembly "$@"
