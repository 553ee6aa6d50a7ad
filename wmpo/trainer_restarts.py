"""Runs that survive their Ray policy workers: when a worker process dies, the trainer's workers are stopped, a new
group is started, and the run continues from the newest checkpoint it wrote, up to ``max_restarts`` times. Resuming
is exact, so the finished run equals one without the fault."""

from __future__ import annotations

import dataclasses
import logging

from opensora.errors import UserError
from wmpo.distributed.worker_group import WorkerLost
from wmpo.trainer import Trainer
from wmpo.trainer_config import TrainerConfig

log = logging.getLogger("wmpo")


class RestartsExhausted(UserError, RuntimeError):
    """Policy workers kept dying."""


def trainer_class(cfg: TrainerConfig) -> type[Trainer]:
    if cfg.algorithm == "dpo":
        from wmpo.dpo_trainer import DPOTrainer

        return DPOTrainer
    return Trainer


def fit_with_restarts(cfg: TrainerConfig) -> None:
    """``Trainer(cfg).fit()`` (``DPOTrainer`` for algorithm=dpo), restarted after each lost worker."""
    restarts = 0
    while True:
        trainer = trainer_class(cfg)(dataclasses.replace(cfg))
        try:
            trainer.fit()
            return
        except WorkerLost as exc:
            if restarts == cfg.max_restarts:
                raise RestartsExhausted(f"{exc}; gave up after {restarts} restarts (max_restarts={cfg.max_restarts})"
                                        ) from exc
            restarts += 1
            # Continue from what this run wrote, not from whatever `resume` named at the start.
            if trainer.last_saved is not None:
                cfg = dataclasses.replace(cfg, resume=str(trainer.last_saved))
            log.warning("%s; restart %d of %d: new workers, resuming from %s", exc, restarts, cfg.max_restarts,
                        cfg.resume)
