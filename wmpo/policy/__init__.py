"""OpenVLA-OFT, the vision-language-action policy that WMPO optimizes."""

from wmpo.policy.action_tokenizer import ActionTokenizer, UnknownUnnormKeyError, unnormalize_actions
from wmpo.policy.checkpoint import CheckpointMismatchError, build_model, load_model, save_model
from wmpo.policy.configuration import OpenVLAConfig, PolicyConfigError, preset
from wmpo.policy.modeling import NUM_ACTION_TOKENS, OpenVLAForActionPrediction
from wmpo.policy.policy import PolicyOutput, VLAPolicy, load_policy

__all__ = [
    "ActionTokenizer",
    "CheckpointMismatchError",
    "NUM_ACTION_TOKENS",
    "OpenVLAConfig",
    "OpenVLAForActionPrediction",
    "PolicyConfigError",
    "PolicyOutput",
    "UnknownUnnormKeyError",
    "VLAPolicy",
    "build_model",
    "load_model",
    "load_policy",
    "preset",
    "save_model",
    "unnormalize_actions",
]
