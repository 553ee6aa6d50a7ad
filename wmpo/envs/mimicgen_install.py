"""Is the installed MimicGen complete?  ``python -m wmpo.envs.mimicgen_install`` prints what is missing (exit 1).

A wheel built from MimicGen's repository can lack the ``mimicgen.models`` package (no ``__init__.py`` at some
commits) and the XML/mesh assets; MimicGen's own import then hides the error and registers no task. An editable
install of a clone has neither problem, so the check looks for exactly these symptoms.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ASSET = Path("models", "robosuite", "assets", "objects", "coffee_pod.xml")
"""One of the assets Coffee_D0 loads, relative to the ``mimicgen`` package."""


def install_problems() -> list[str]:
    """What keeps the installed MimicGen from serving the four released tasks (empty: nothing)."""
    from wmpo.envs.factory import mimicgen_problem
    from wmpo.tasks import RELEASED_TASKS, get_task

    spec = importlib.util.find_spec("mimicgen")
    if spec is None:
        return ["MimicGen is not installed"]
    problems = [problem for name in RELEASED_TASKS if (problem := mimicgen_problem(get_task(name).env_name))]
    package = Path(next(iter(spec.submodule_search_locations or []), ""))
    if not (package / ASSET).is_file():
        problems.append(f"MimicGen's assets are missing: no {package / ASSET}")
    return problems


def main() -> int:
    problems = install_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
