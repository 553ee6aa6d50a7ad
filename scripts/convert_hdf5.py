"""Convert robomimic / MimicGen HDF5 demos into episode shards (video.npy, action.npy, meta.json).

    python scripts/convert_hdf5.py inputs=[demo.hdf5] output=data_files/episodes/square flip=false size=256

``flip`` and ``size`` are deliberate choices: look at a converted frame (``preview=true`` writes the first frame of
the first episode as preview.png) and flip if the table is at the top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from opensora.datasets.shards import write_shards
from opensora.errors import reports_errors
from wmpo.cli import parse_config
from wmpo.data.robomimic import read_demos


@dataclass
class Config:
    inputs: list[str] = field(default_factory=list)
    """HDF5 files to convert."""
    output: str = "data_files/episodes/converted"
    """Folder for the tar shards."""
    camera: str = "agentview"
    """Camera whose images become the video."""
    flip: bool = False
    """Flip frames vertically (robosuite's raw renders are bottom-up)."""
    size: int | None = 256
    """Resize frames to size×size; null keeps the stored size."""
    complete: bool = True
    """Outcome recorded for the demos (collected demonstrations are successful)."""
    max_shard_gib: float = 4.0
    """Shard size limit."""
    preview: bool = True
    """Write the first frame of the first episode to <output>/preview.png."""


@reports_errors
def main() -> None:
    cfg = parse_config(Config, doc=__doc__)
    if not cfg.inputs:
        raise SystemExit("error: give inputs=[file.hdf5,...]")
    episodes = (ep for path in cfg.inputs for ep in read_demos(path, cfg.camera, cfg.flip, cfg.size, cfg.complete))
    first = []

    def remember(stream):
        for episode in stream:
            if not first:
                first.append(episode.video[0])
            yield episode

    paths = write_shards(remember(episodes), cfg.output, max_shard_bytes=int(cfg.max_shard_gib * 1024**3))
    if cfg.preview and first:
        import imageio.v3 as iio

        iio.imwrite(Path(cfg.output) / "preview.png", first[0])
    print(f"wrote {len(paths)} shard(s) to {cfg.output}")


if __name__ == "__main__":
    main()
