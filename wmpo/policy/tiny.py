"""A tiny policy checkpoint in the released layout, built locally: for tests, CI and the CPU quickstart.

The tokenizer mimics the Llama one where it matters: BOS 1, EOS 2, "▁" word-start pieces (Metaspace), a padding
token one past the base vocabulary, and the last 256 base ids reserved as action tokens that text never produces.
It is character level, so any prompt encodes without a trained vocabulary.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

from wmpo.policy.checkpoint import build_model, save_model
from wmpo.policy.configuration import preset
from wmpo.tasks import TASKS

TINY_VOCAB_SIZE = 512


def build_tiny_tokenizer(vocab_size: int = TINY_VOCAB_SIZE, n_action_bins: int = 256):
    """A character-level Llama-style fast tokenizer with ``vocab_size`` base ids plus ``<PAD>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    pieces = ["<unk>", "<s>", "</s>", "▁"] + [c for c in string.printable if c not in " \t\r\x0b\x0c"]
    if len(pieces) > vocab_size - n_action_bins:
        raise ValueError(f"vocab_size {vocab_size} leaves no room for {len(pieces)} text pieces and the action tokens")
    pieces += [f"<unused{i}>" for i in range(len(pieces), vocab_size - n_action_bins)]
    pieces += [f"<action{i}>" for i in range(n_action_bins)]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", fuse_unk=True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tokenizer.add_special_tokens({"pad_token": "<PAD>"})
    return tokenizer


def unit_norm_stats(keys: list[str] | None = None) -> dict:
    """OpenVLA-format statistics with q01 = −1 and q99 = 1 (identity un-normalization) for each task key."""
    keys = keys or [spec.unnorm_key for spec in TASKS.values()]
    action = {
        "mean": [0.0] * 7,
        "std": [1.0] * 7,
        "min": [-1.0] * 7,
        "max": [1.0] * 7,
        "q01": [-1.0] * 7,
        "q99": [1.0] * 7,
        "mask": [True] * 6 + [False],
    }
    return {key: {"action": dict(action), "num_transitions": 0, "num_trajectories": 0} for key in keys}


def write_tiny_checkpoint(
    path: str | Path, seed: int = 0, norm_stats: dict | None = None, preset_name: str = "tiny"
) -> Path:
    """Randomly initialized ``tiny`` (or ``small``) policy + tokenizer + statistics, in the released layout."""
    tokenizer = build_tiny_tokenizer()
    config = preset(preset_name, vocab_size=TINY_VOCAB_SIZE)
    config.norm_stats = unit_norm_stats() if norm_stats is None else norm_stats
    torch.manual_seed(seed)
    model = build_model(config)
    save_model(model, path, tokenizer=tokenizer)
    return Path(path)
