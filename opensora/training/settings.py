"""Settings checked before any work: the first bad one is named with its value and the allowed range."""

from __future__ import annotations

from collections.abc import Iterable

from opensora.errors import UserError


class SettingError(UserError, ValueError):
    """A setting outside its allowed values; the message names the key, the value and what is allowed."""


def check_settings(rules: Iterable[tuple[bool, str, object, str]]) -> None:
    """``rules``: (holds, key, value, allowed) — raises SettingError for the first rule that does not hold."""
    for holds, key, value, allowed in rules:
        if not holds:
            raise SettingError(f"{key}={value!r}: must be {allowed}")
