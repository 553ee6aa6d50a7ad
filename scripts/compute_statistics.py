"""Action statistics (OpenVLA dataset_statistics.json) from episode shards.

    python scripts/compute_statistics.py shards=[data_files/episodes/square] key=square_d0_300_demos \\
        output=data_files/statistics/square/dataset_statistics.json
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from opensora.datasets.shards import index_episodes
from opensora.errors import reports_errors
from wmpo.cli import parse_config
from wmpo.data.statistics import action_statistics


@dataclass
class Config:
    shards: list[str] = field(default_factory=list)
    """Episode shard folders or globs."""
    key: str = "square_d0_300_demos"
    """Dataset key (the policy's unnorm_key)."""
    output: str = "dataset_statistics.json"
    """File to write."""


@reports_errors
def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    refs = index_episodes(list(cfg.shards))
    try:
        stats = {cfg.key: action_statistics(ref.executed_actions() for ref in refs)}
    except ValueError as exc:
        raise SystemExit(f"error: {exc}; nothing written to {cfg.output}") from None
    Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.output).write_text(json.dumps(stats, indent=2) + "\n")
    info = stats[cfg.key]
    print(f"{cfg.output}: {info['num_trajectories']} trajectories, {info['num_transitions']} transitions")


if __name__ == "__main__":
    main()
