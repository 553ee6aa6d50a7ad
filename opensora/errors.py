"""Expected failures (a bad path, key, value or file) and how entry points report them: one line naming what is wrong
and what to do, exit status 2, no traceback unless ``WMPO_DEBUG=1`` asks for it. Unexpected exceptions keep theirs."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TypeVar

DEBUG_VARIABLE = "WMPO_DEBUG"
F = TypeVar("F", bound=Callable)


class UserError(Exception):
    """A failure the person running the command can act on; its message says what and where."""


def message(exc: BaseException) -> str:
    """The message without the quotes ``str(KeyError)`` adds."""
    return exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc)


def reports_errors(main: F) -> F:
    """Run an entry point, printing expected failures in one line instead of a traceback."""

    @functools.wraps(main)
    def run(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (UserError, FileNotFoundError) as exc:
            if os.environ.get(DEBUG_VARIABLE):
                raise
            print(f"error: {message(exc)}\n(set {DEBUG_VARIABLE}=1 to see the traceback)", file=sys.stderr)
            raise SystemExit(2) from None

    return run
