"""WMPO training entry point (Hydra).

    python -m wmpo.train --config-name quickstart            # tiny models on the CPU, a few minutes
    python -m wmpo.train --config-name quickstart iterations=4 output=outputs/quickstart_long
"""

from __future__ import annotations

import logging

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from opensora.errors import reports_errors
from wmpo.trainer_config import TrainerConfig
from wmpo.trainer_restarts import fit_with_restarts

# The YAML files list this schema first in their defaults, so every TrainerConfig field can be overridden from the
# command line (e.g. num_workers=8) and a mistyped key or value fails before anything starts.
ConfigStore.instance().store(name="trainer_schema", node=TrainerConfig)


@hydra.main(config_path="../configs", config_name="quickstart", version_base="1.3")
@reports_errors
def main(raw: DictConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True)
    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainerConfig), raw))
    fit_with_restarts(cfg)


if __name__ == "__main__":
    main()
