"""robosuite advises, on every import without a ``macros_private.py``, to create one. This project passes what it needs
as arguments, so in a pool of simulator processes the advice is only noise; it is dropped, nothing else is."""

from __future__ import annotations

import logging

LOGGER = "robosuite_logs"


def _not_macro_advice(record: logging.LogRecord) -> bool:
    return record.module != "macros"


def silence_macro_advice() -> None:
    """Drop robosuite's private-macro-file advice; call before robosuite is first imported."""
    logger = logging.getLogger(LOGGER)
    if _not_macro_advice not in logger.filters:
        logger.addFilter(_not_macro_advice)
