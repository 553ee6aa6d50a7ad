"""Download released WMPO checkpoints and data from the Hugging Face Hub into this folder.

    python download_hf.py --what sft,world_model --tasks square
The full release is 364 GiB of checkpoints plus 530 GiB of data, so pick what you need.
"""

from __future__ import annotations

import argparse
import os
import sys

from wmpo.tasks import TASKS

REPO = "fangqi/WMPO"
PATTERNS = {
    "sft": ["checkpoint_files/SFT_models/{task}/*"],
    "wmpo": ["checkpoint_files/WMPO_models/{task}/*"],
    "world_model": ["checkpoint_files/world_models/{task}/*"],
    "reward_model": ["checkpoint_files/reward_models/videomae_{task}.pth"],
    "vae": ["checkpoint_files/world_models/vae/*"],
    "data": ["data_files/*{task}*"],
}


def allow_patterns(what: list[str], tasks: list[str]) -> list[str]:
    unknown = [w for w in what if w not in PATTERNS]
    if unknown:
        raise SystemExit(f"error: unknown --what {','.join(unknown)}; choose from {','.join(PATTERNS)}")
    bad_tasks = [t for t in tasks if t not in TASKS]
    if bad_tasks:
        raise SystemExit(f"error: unknown task {','.join(bad_tasks)}; known: {','.join(TASKS)}")
    return sorted({p.format(task=t) for w in what for p in PATTERNS[w] for t in tasks})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=REPO, help="Hugging Face repository id")
    parser.add_argument("--what", default="sft,reward_model", help=f"comma list of {','.join(PATTERNS)}")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma list of tasks")
    parser.add_argument("--local-dir", default=".", help="where checkpoint_files/ and data_files/ go")
    parser.add_argument("--workers", type=int, default=8, help="parallel downloads")
    args = parser.parse_args()
    patterns = allow_patterns(args.what.split(","), args.tasks.split(","))
    print("downloading", *patterns, sep="\n  ")
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(
            repo_id=args.repo,
            allow_patterns=patterns,
            local_dir=args.local_dir,
            max_workers=args.workers,
            token=os.environ.get("HF_TOKEN"),
        )
    except Exception as exc:  # offline, missing repository, auth: all end the same way for the user
        sys.exit(f"error: download from {args.repo} failed ({type(exc).__name__}: {exc}); check the network, "
                 f"the repository id and HF_TOKEN")


if __name__ == "__main__":
    main()
