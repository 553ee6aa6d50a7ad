"""OpenVLA-OFT with parallel action decoding: one bidirectional forward yields the logits of all 56 action tokens.

Sequence layout (per row, padding moved to the right end):
``[BOS] + visual tokens + prompt[1:] + 56 action slots + [stop]``; the slots' input embeddings are zero. The
hidden state at the last prompt token predicts action token 0, the one at slot k predicts token k+1. Only those 56
positions go through the final norm and only the action-token rows of the LM head are applied: the other outputs
are never used.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaForCausalLM

from wmpo.policy.configuration import OpenVLAConfig
from wmpo.policy.vision import FusedProjector, FusedVisionBackbone

ACTION_DIM = 7
ACTION_CHUNK = 8
NUM_ACTION_TOKENS = ACTION_DIM * ACTION_CHUNK
STOP_TOKEN_ID = 2


class OpenVLAForActionPrediction(nn.Module):
    """The released policy's modules, named as in its checkpoints.

    For FSDP, the sharding units are the towers' timm blocks, the Llama decoder layers, the projector and the root:
    the forward calls the embedding table, the final norm and the LM head rows directly, so those must stay in
    the root unit.
    """

    def __init__(self, config: OpenVLAConfig) -> None:
        super().__init__()
        self.config = config
        self.vision_backbone = FusedVisionBackbone(config.timm_model_ids, config.image_sizes, config.vision_overrides)
        llama_config = config.llama_config()
        self.projector = FusedProjector(self.vision_backbone.embed_dim, llama_config.hidden_size)
        self.language_model = LlamaForCausalLM(llama_config)
        self._rotary_cache: dict = {}

    @property
    def num_patches(self) -> int:
        """Visual tokens inserted after BOS."""
        return self.vision_backbone.num_patches

    def _layout(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Text ids with padding moved to the end and slots + stop appended, their mask, each row's prompt length."""
        batch = input_ids.shape[0]
        device = input_ids.device
        # Stable sort moves padding to the end and keeps token order (left or right padding both work).
        order = torch.argsort((attention_mask == 0).to(torch.int8), dim=1, stable=True)
        ids = torch.gather(input_ids, 1, order)
        mask = torch.gather(attention_mask, 1, order).bool()
        prompt_len = mask.sum(dim=1)
        width = ids.shape[1] + NUM_ACTION_TOKENS + 1
        text = torch.full((batch, width), self.config.pad_token_id, dtype=torch.long, device=device)
        text_mask = torch.zeros((batch, width), dtype=torch.bool, device=device)
        text[:, : ids.shape[1]] = torch.where(mask, ids, torch.full_like(ids, self.config.pad_token_id))
        text_mask[:, : ids.shape[1]] = mask
        positions = torch.arange(width, device=device).unsqueeze(0)
        slots = (positions >= prompt_len[:, None]) & (positions < prompt_len[:, None] + NUM_ACTION_TOKENS)
        stop = positions == prompt_len[:, None] + NUM_ACTION_TOKENS
        text = torch.where(stop, torch.full_like(text, STOP_TOKEN_ID), text)
        text_mask |= slots | stop
        return text, text_mask, slots, prompt_len

    def _rotary(self, length: int, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotary cos/sin computed in fp32 from the config, whatever dtype the model's buffers were cast to."""
        key = (length, device, dtype)
        if key not in self._rotary_cache:
            llama = self.language_model.config
            if llama.rope_parameters.get("rope_type", "default") != "default":
                raise ValueError(f"unsupported rope type {llama.rope_parameters['rope_type']!r} (Llama-2 uses default)")
            head_dim = getattr(llama, "head_dim", None) or llama.hidden_size // llama.num_attention_heads
            exponents = torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim
            inv_freq = 1.0 / (llama.rope_parameters["rope_theta"] ** exponents)
            angles = torch.arange(length, dtype=torch.float32, device=device)[:, None] * inv_freq[None, :]
            angles = torch.cat([angles, angles], dim=-1)[None]
            self._rotary_cache = {key: (angles.cos().to(dtype), angles.sin().to(dtype))}
        return self._rotary_cache[key]

    def action_hidden_states(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, 56, hidden): final-norm hidden states at the positions that predict the 56 action tokens."""
        if input_ids.shape[0] != pixel_values.shape[0]:
            raise ValueError(f"batch mismatch: {input_ids.shape[0]} prompts, {pixel_values.shape[0]} images")
        text, text_mask, slots, prompt_len = self._layout(input_ids, attention_mask)
        llm = self.language_model.model
        text_embeds = llm.embed_tokens(text)
        text_embeds = text_embeds * (~slots).unsqueeze(-1).to(text_embeds.dtype)
        visual = self.projector(self.vision_backbone(pixel_values.to(text_embeds.dtype)))
        embeds = torch.cat([text_embeds[:, :1], visual, text_embeds[:, 1:]], dim=1)
        ones = torch.ones(visual.shape[:2], dtype=torch.bool, device=visual.device)
        mask = torch.cat([text_mask[:, :1], ones, text_mask[:, 1:]], dim=1)

        position_ids = torch.arange(embeds.shape[1], device=embeds.device).unsqueeze(0)
        rotary = self._rotary(embeds.shape[1], embeds.device, embeds.dtype)
        # Full bidirectional attention; an explicit mask only when some row has padding keys.
        attn_mask = None if bool(mask.all()) else mask[:, None, None, :]
        hidden = embeds
        for layer in llm.layers:
            hidden = layer(
                hidden, attention_mask=attn_mask, position_ids=position_ids, position_embeddings=rotary, is_causal=False
            )
        first = visual.shape[1] + prompt_len - 1
        index = first[:, None] + torch.arange(NUM_ACTION_TOKENS, device=hidden.device)[None, :]
        picked = torch.gather(hidden, 1, index[:, :, None].expand(-1, -1, hidden.shape[-1]))
        return llm.norm(picked)

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, 56, n_action_bins) float32 logits over the action tokens (index i ↔ token id action_token_begin+i)."""
        hidden = self.action_hidden_states(pixel_values, input_ids, attention_mask)
        begin = self.config.action_token_begin
        weight = self.language_model.lm_head.weight[begin : begin + self.config.n_action_bins]
        return nn.functional.linear(hidden, weight).float()
