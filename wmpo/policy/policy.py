"""The policy as WMPO uses it: frames + instructions → action chunks, and per-token log-probs for the update."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wmpo.policy.action_tokenizer import ActionTokenizer, action_stats, unnormalize_actions
from wmpo.policy.checkpoint import load_model
from wmpo.policy.modeling import ACTION_CHUNK, ACTION_DIM, NUM_ACTION_TOKENS, OpenVLAForActionPrediction
from wmpo.policy.processing import PromptTokenizer, preprocess_images


@dataclass
class PolicyOutput:
    """One policy query for a batch of B observations."""

    actions: np.ndarray
    """(B, 8, 7) float64 actions in environment units."""
    normalized_actions: torch.Tensor
    """(B, 8, 7) float32 actions in [-1, 1] (what the world model consumes)."""
    responses: torch.Tensor
    """(B, 56) action token ids."""
    log_probs: torch.Tensor
    """(B, 56) log-probabilities of the chosen tokens at the query temperature."""
    inputs: dict[str, torch.Tensor]
    """The model inputs (pixel_values, input_ids, attention_mask), to recompute log-probs later."""


def token_log_probs(logits: torch.Tensor, slots: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of ``slots`` and the entropy of each position under softmax(logits / temperature), in fp32
    whatever the logits' dtype (bf16 log-probs would make the PPO ratio noisy)."""
    log_p = torch.log_softmax(logits.float() / temperature, dim=-1)
    chosen = torch.gather(log_p, -1, slots.unsqueeze(-1)).squeeze(-1)
    entropy = -(log_p.exp() * log_p).sum(dim=-1)
    return chosen, entropy


def sample_slots(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | Sequence[torch.Generator] | None
) -> torch.Tensor:
    """Independent categorical draw per position from softmax(logits / temperature) → (B, 56) indices."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if generator is None or isinstance(generator, torch.Generator):
        rows = [(probs.reshape(-1, probs.shape[-1]), generator)]
    else:
        if len(generator) != probs.shape[0]:
            raise ValueError(f"{len(generator)} generators for a batch of {probs.shape[0]}")
        rows = list(zip(probs, generator))
    draws = []
    for row_probs, gen in rows:
        device = gen.device if gen is not None else row_probs.device
        draws.append(torch.multinomial(row_probs.to(device), 1, generator=gen).to(logits.device))
    return torch.cat(draws).view(logits.shape[:-1])


class VLAPolicy:
    """OpenVLA-OFT model + prompt tokenizer + action tokenizer + the statistics of one task."""

    def __init__(self, model: nn.Module, tokenizer, unnorm_key: str | None = None) -> None:
        self.model = model
        self.config = _unwrap(model).config
        self.prompts = PromptTokenizer(tokenizer, self.config.pad_token_id)
        self.action_tokenizer = ActionTokenizer(self.config.vocab_size, self.config.n_action_bins)
        self.image_size = self.config.image_sizes[0]
        self.stats = None
        if unnorm_key is not None:
            self.stats = action_stats(self.config.norm_stats, unnorm_key)
        self.unnorm_key = unnorm_key

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def prepare(self, images: np.ndarray | torch.Tensor, instructions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Model inputs for uint8 frames (B, H, W, 3) and one instruction per frame."""
        if len(instructions) != len(images):
            raise ValueError(f"{len(images)} images but {len(instructions)} instructions")
        batch = self.prompts(instructions, device=self.device)
        batch["pixel_values"] = preprocess_images(images, self.image_size, device=self.device)
        return batch

    def idle_inputs(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Inputs and responses of a one-row placeholder query: a rank of a sharded policy with nothing to compute
        still takes part in every forward (and backward), where the parameters are gathered collectively."""
        inputs = self.prepare(np.zeros((1, 8, 8, 3), np.uint8), ["idle"])
        responses = torch.full((1, NUM_ACTION_TOKENS), self.action_tokenizer.token_begin, device=self.device)
        return inputs, responses

    @torch.no_grad()
    def idle_forward(self) -> None:
        inputs, _ = self.idle_inputs()
        self.model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])

    @torch.no_grad()
    def predict(
        self,
        images: np.ndarray | torch.Tensor,
        instructions: Sequence[str],
        do_sample: bool = True,
        temperature: float = 1.0,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
    ) -> PolicyOutput:
        """One parallel-decoding forward; sample each of the 56 tokens independently, or take the argmax.

        ``generator`` is one generator for the batch or one per row (rows then do not depend on their batch-mates).
        """
        if self.stats is None:
            raise ValueError("predict needs action statistics: construct the policy with an unnorm_key")
        inputs = self.prepare(images, instructions)
        logits = self.model(inputs["pixel_values"], inputs["input_ids"], inputs["attention_mask"])
        slots = sample_slots(logits, temperature, generator) if do_sample else logits.argmax(dim=-1)
        log_probs, _ = token_log_probs(logits, slots, temperature)
        responses = self.action_tokenizer.slot_to_token(slots)
        exact = self.action_tokenizer.tokens_to_normalized(responses, torch.float64).view(-1, ACTION_CHUNK, ACTION_DIM)
        normalized = exact.float()
        actions = unnormalize_actions(exact.cpu().numpy(), self.stats)
        return PolicyOutput(actions, normalized, responses, log_probs, inputs)

    def log_probs(
        self,
        inputs: dict[str, torch.Tensor],
        responses: torch.Tensor,
        temperature: float = 1.0,
        micro_batch_size: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs and entropies (B, 56) of ``responses``, with gradients, in micro-batches.

        The graphs of all micro-batches are kept until the caller's backward; a trainer that must bound memory
        calls this once per slice and backpropagates each slice's loss.
        """
        size = responses.shape[0]
        step = micro_batch_size or size
        chosen, entropies = [], []
        for start in range(0, size, step):
            part = slice(start, start + step)
            logits = self.model(
                inputs["pixel_values"][part], inputs["input_ids"][part], inputs["attention_mask"][part]
            )
            slots = self.action_tokenizer.token_to_slot(responses[part].to(logits.device))
            log_p, entropy = token_log_probs(logits, slots, temperature)
            chosen.append(log_p)
            entropies.append(entropy)
        return torch.cat(chosen), torch.cat(entropies)


def _unwrap(model: nn.Module) -> OpenVLAForActionPrediction:
    while not isinstance(model, OpenVLAForActionPrediction):
        inner = getattr(model, "module", None) or getattr(model, "model", None)
        if inner is None:
            raise TypeError(f"{type(model).__name__} does not wrap an OpenVLAForActionPrediction")
        model = inner
    return model


def load_tokenizer(path: str | Path):
    """The Llama tokenizer saved in a policy checkpoint directory (local files only).

    ``tokenizer.json`` is loaded as-is, which is the pipeline the released fast tokenizer runs; a directory with only
    the SentencePiece ``tokenizer.model`` goes through transformers' Llama tokenizer.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    if (path / "tokenizer.json").is_file():
        return PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
    if (path / "tokenizer.model").is_file():
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    raise FileNotFoundError(f"{path}: no tokenizer.json or tokenizer.model in the policy checkpoint directory")


def load_policy(
    path: str | Path,
    unnorm_key: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> VLAPolicy:
    """Model, tokenizer and statistics from a released (or this project's) policy directory."""
    return VLAPolicy(load_model(path, device=device, dtype=dtype), load_tokenizer(path), unnorm_key)
