"""``key=value`` command lines for scripts, validated against a dataclass config."""

from __future__ import annotations

import dataclasses
import sys
from typing import TypeVar

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")


def parse_config(config_cls: type[T], argv: list[str] | None = None, doc: str = "") -> T:
    """Build ``config_cls`` from ``key=value`` arguments; ``--help`` lists the fields and their defaults."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(doc.strip() + "\n\noptions (key=value):")
        for field in dataclasses.fields(config_cls):
            if field.default is not dataclasses.MISSING:
                default = field.default
            elif field.default_factory is not dataclasses.MISSING:
                default = field.default_factory()
            else:
                default = "(required)"
            print(f"  {field.name}={default}")
        raise SystemExit(0)
    bad = [a for a in argv if "=" not in a]
    if bad:
        raise SystemExit(f"error: arguments must be key=value, got {' '.join(bad)} (see --help)")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(config_cls), OmegaConf.from_dotlist(argv))
    except OmegaConfBaseException as exc:
        raise SystemExit(f"error: {exc.msg if hasattr(exc, 'msg') else exc} (see --help)") from None
    return OmegaConf.to_object(merged)
