"""Download released WMPO checkpoints and data from the Hugging Face Hub into this folder.

    python download_hf.py --what sft,world_model,reward_model --tasks square --budget 128 --dry-run
    python download_hf.py --what sft,world_model,reward_model,vae --tasks square --budget 128

The release (364 GiB of checkpoints, 530 GiB of data) lives in one repository with checkpoint_files/ and
data_files/ at its root; they land in the same places here. --dry-run lists every file that would be fetched with
its size and the total. Interrupted downloads resume when the command is run again. A token is read from HF_TOKEN
(or the huggingface-cli login). --listing reads a file listing recorded with --record-listing, to plan offline.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from wmpo.tasks import RELEASED_TASKS

REPO = "fangqi/WMPO"
BUDGETS = ("128", "1280")
PATTERNS = {
    "sft": ["checkpoint_files/SFT_models/{task}/*"],
    "wmpo": ["checkpoint_files/WMPO_models/{task}/P_{budget}/*"],
    "world_model": ["checkpoint_files/world_models/{task}/P_{budget}/*"],
    "reward_model": ["checkpoint_files/reward_models/videomae_{task}.pth"],
    "vae": ["checkpoint_files/world_models/vae/*"],
    "opensora_base": ["checkpoint_files/world_models/OpenSora-STDiT-v3/*"],
    "openx": ["checkpoint_files/world_models/OpenX_pretrained/*"],
    "data": [
        "data_files/example_rollouts/{task}_{budget}_demos*/*",
        "data_files/statistics/{task}/*",
        "data_files/first_images/{task}/*",
        "data_files/core_train_configs/*_{task}_D0_*",
    ],
}
"""What → fnmatch patterns over repository paths (``*`` also matches ``/``, as in snapshot_download)."""


class DownloadError(RuntimeError):
    """The plan cannot be made or executed; the message says what to do."""


def split_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def plan_patterns(what: list[str], tasks: list[str], budgets: list[str]) -> list[str]:
    """The allow-patterns for a selection; unknown names fail listing the known ones."""
    unknown = [w for w in what if w not in PATTERNS]
    if unknown:
        raise DownloadError(f"unknown --what {','.join(unknown)}; choose from {','.join(PATTERNS)}")
    bad_tasks = [t for t in tasks if t not in RELEASED_TASKS]
    if bad_tasks:
        raise DownloadError(f"no released files for task {','.join(bad_tasks)}; released: {','.join(RELEASED_TASKS)}")
    bad_budgets = [b for b in budgets if b not in BUDGETS]
    if bad_budgets:
        raise DownloadError(f"unknown budget {','.join(bad_budgets)}; known: {','.join(BUDGETS)}")
    return sorted(
        {p.format(task=t, budget=b) for w in what for p in PATTERNS[w] for t in tasks for b in budgets}
    )


def select(listing: dict[str, int], patterns: list[str]) -> tuple[dict[str, int], list[str]]:
    """Files of ``listing`` (path → bytes) matching any pattern, and the patterns that match nothing."""
    chosen = {path: size for path, size in listing.items() if any(fnmatch.fnmatch(path, p) for p in patterns)}
    empty = [p for p in patterns if not any(fnmatch.fnmatch(path, p) for path in listing)]
    return dict(sorted(chosen.items())), empty


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TiB"


def format_plan(chosen: dict[str, int], local_dir: Path) -> str:
    lines = [f"{human(size):>12}  {path}" + ("  (present)" if (local_dir / path).is_file() else "")
             for path, size in chosen.items()]
    lines.append(f"{human(sum(chosen.values())):>12}  total in {len(chosen)} files")
    return "\n".join(lines)


def check_reachable(timeout: float = 5.0) -> None:
    """Fail within seconds, with advice, when the Hub cannot be reached (instead of minutes of retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise DownloadError("HF_HUB_OFFLINE is set: unset it to download, or plan offline with --listing FILE")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = urlparse(endpoint).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as exc:
        raise DownloadError(
            f"cannot reach {host} ({exc}). Check the network or proxy (HTTPS_PROXY), or set HF_ENDPOINT to a "
            "mirror; to plan without network, pass --listing FILE recorded elsewhere with --record-listing."
        ) from None


def remote_listing(repo: str, token: str | None) -> dict[str, int]:
    """Every file of the repository with its size."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        entries = HfApi().list_repo_tree(repo, recursive=True, token=token)
        return {entry.path: int(entry.size) for entry in entries if getattr(entry, "size", None) is not None}
    except RepositoryNotFoundError:
        raise DownloadError(f"repository {repo} not found (or private without a valid HF_TOKEN)") from None
    except GatedRepoError:
        raise DownloadError(f"repository {repo} is gated: accept its terms on the Hub and set HF_TOKEN") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=REPO, help="Hugging Face repository id")
    parser.add_argument("--what", default="sft,reward_model", help=f"comma list of {','.join(PATTERNS)}")
    parser.add_argument("--tasks", default=",".join(RELEASED_TASKS), help="comma list of tasks")
    parser.add_argument("--budget", default=",".join(BUDGETS), help="rollout budget(s): 128, 1280")
    parser.add_argument("--local-dir", default=".", help="where checkpoint_files/ and data_files/ go")
    parser.add_argument("--workers", type=int, default=8, help="parallel downloads")
    parser.add_argument("--dry-run", action="store_true", help="list the files and sizes, download nothing")
    parser.add_argument("--listing", help="JSON {path: bytes} of the repository instead of asking the Hub")
    parser.add_argument("--record-listing", help="write the repository's file listing to this JSON file")
    args = parser.parse_args(argv)
    token = os.environ.get("HF_TOKEN")
    local_dir = Path(args.local_dir)
    try:
        patterns = plan_patterns(split_list(args.what), split_list(args.tasks), split_list(args.budget))
        if args.listing:
            listing = {path: int(size) for path, size in json.loads(Path(args.listing).read_text()).items()}
        else:
            check_reachable()
            listing = remote_listing(args.repo, token)
        if args.record_listing:
            Path(args.record_listing).write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n")
        chosen, empty = select(listing, patterns)
        if empty:
            raise DownloadError(f"no file of {args.repo} matches: {', '.join(empty)}")
        print(format_plan(chosen, local_dir))
        if args.dry_run:
            return 0
        if args.listing:
            check_reachable()
        from huggingface_hub import snapshot_download

        snapshot_download(
            repo_id=args.repo,
            allow_patterns=sorted(chosen),
            local_dir=str(local_dir),
            max_workers=args.workers,
            token=token,
        )
    except DownloadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done: {len(chosen)} files under {local_dir.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
