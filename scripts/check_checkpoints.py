"""Check downloaded checkpoints against this project's models, from tensor headers only.

    python scripts/check_checkpoints.py                      # everything under checkpoint_files/
    python scripts/check_checkpoints.py checkpoint_files/SFT_models/square checkpoint_files/reward_models

Prints one line per component (policy folder, world-model weights, VAE folder, reward model) with OK or what is
missing, unexpected or mis-shaped, then the first offending keys. Exit status 1 on any mismatch, 2 when nothing
was found.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wmpo.released_checkpoints import check, discover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", default=["checkpoint_files"], help="files or folders to check")
    parser.add_argument("--world-model-preset", default="XL/2", help="STDiT3 preset world models are checked against")
    parser.add_argument("--reward-preset", default="base", help="VideoMAE preset reward models are checked against")
    parser.add_argument("--show", type=int, default=5, help="offending keys listed per category")
    args = parser.parse_args(argv)
    components = []
    for raw in args.paths:
        path = Path(raw)
        if not path.exists():
            print(f"error: {path} does not exist", file=sys.stderr)
            return 2
        components += discover(path)
    if not components:
        print(f"error: no checkpoint components found under {', '.join(args.paths)}", file=sys.stderr)
        return 2
    results = [check(kind, path, args.world_model_preset, args.reward_preset) for kind, path in components]
    width = max(len(str(r.path)) for r in results)
    for result in results:
        print(f"{result.kind:<13} {str(result.path):<{width}}  {result.status()}")
        for title, items in (("missing", result.missing), ("unexpected", result.unexpected),
                             ("shape mismatch", result.mismatched)):
            for item in items[: args.show]:
                print(f"{'':<13} {title}: {item}")
    bad = sum(not r.ok for r in results)
    print(f"{len(results) - bad}/{len(results)} components match")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
