"""Supervised fine-tuning of the policy on episode shards.

    python -m wmpo.sft task=lift shards=[outputs/demos/lift] preset=small steps=2000 output=outputs/sft/lift
    python -m wmpo.sft task=square shards=[...] init_from=checkpoint_files/SFT_models/square lora_rank=32 ...
    torchrun --nproc_per_node 8 -m wmpo.sft init_from=... lora_rank=32 shards=[...]    # the 7B on GPUs (DDP)

The final policy is written to ``<output>/policy`` in the released layout; rerunning the same command resumes.
"""

from __future__ import annotations

import logging

from opensora.errors import reports_errors
from wmpo.cli import parse_config
from wmpo.policy.sft import SFTConfig, train


@reports_errors
def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    train(parse_config(SFTConfig, argv, doc=__doc__))


if __name__ == "__main__":
    main()
