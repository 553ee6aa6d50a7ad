"""WMPO training entry point (Hydra).

    python -m wmpo.train --config-name quickstart            # tiny models on the CPU, a few minutes
    python -m wmpo.train --config-name quickstart iterations=4 output=outputs/quickstart_long
"""

from __future__ import annotations

import logging

import hydra
from omegaconf import DictConfig, OmegaConf

from wmpo.trainer import Trainer, TrainerConfig


@hydra.main(config_path="../configs", config_name="quickstart", version_base="1.3")
def main(raw: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainerConfig), raw))
    Trainer(cfg).fit()


if __name__ == "__main__":
    main()
