"""Preemption: SIGTERM or SIGINT during training asks the loop to stop after the step in progress, so the step is
finished, a checkpoint is written and the run exits non-zero with a message; rerunning continues from there."""

from __future__ import annotations

import signal
import threading

from opensora.errors import UserError


class Interrupted(UserError):
    """The run stopped on a signal after checkpointing its last completed step."""


class StopOnSignal:
    """While active (``with``), SIGTERM and SIGINT set ``requested`` instead of killing the process; a second signal
    of the same kind falls back to the default behaviour."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested: str | None = None
        self._previous: dict = {}

    def _handle(self, number, frame) -> None:
        self.requested = signal.Signals(number).name
        signal.signal(number, self._previous.get(number, signal.SIG_DFL))

    def __enter__(self) -> StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}
