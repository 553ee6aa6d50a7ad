"""FSDP2 sharding plan of the policy: one unit per vision block, per Llama decoder layer, the projector, and the
root (which keeps the embedding table, final norm and LM head that the forward uses directly)."""

from __future__ import annotations

import torch
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

from wmpo.policy.modeling import OpenVLAForActionPrediction


def shard_policy(model: OpenVLAForActionPrediction, bf16: bool = False) -> OpenVLAForActionPrediction:
    """Shard ``model`` in place over the default process group."""
    kwargs = {}
    if bf16:
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    units = [*model.vision_backbone.featurizer.blocks, *model.vision_backbone.fused_featurizer.blocks,
             *model.language_model.model.layers, model.projector]
    for unit in units:
        fully_shard(unit, **kwargs)
    fully_shard(model, **kwargs)
    return model
