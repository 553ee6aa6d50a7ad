"""Episode shards: uncompressed WebDataset tar files, one sample per episode.

Members per episode ``<key>``: ``<key>.video.npy`` (uint8 T×H×W×3, frame 0 = the observation after the settle steps,
frame k+1 = after action k), ``<key>.action.npy`` (float32 N×7, unnormalized environment actions) and
``<key>.meta.json`` (``finish_step`` = environment steps executed; optional ``complete`` and anything else).

Reading never extracts the tar: the index records where each array's bytes start, and windows are read through a
memory map, so a training job touches only the frames it uses.
"""

from __future__ import annotations

import glob
import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from opensora.errors import UserError


ACTION_DIM = 7


class ShardError(UserError, ValueError):
    """A shard or one of its episodes is malformed."""


@dataclass
class Episode:
    """One episode in memory (for writing shards)."""

    key: str
    video: np.ndarray
    actions: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ArrayRef:
    """Location of a ``.npy`` array inside a tar file."""

    path: str
    offset: int
    shape: tuple[int, ...]
    dtype: str

    def open(self) -> np.ndarray:
        """A read-only memory map of the array."""
        return np.memmap(self.path, dtype=np.dtype(self.dtype), mode="r", offset=self.offset, shape=self.shape)


@dataclass(frozen=True)
class EpisodeRef:
    """An indexed episode: where its video and actions are, and its metadata."""

    key: str
    shard: str
    video: ArrayRef
    actions: ArrayRef
    meta: dict[str, Any]

    @property
    def finish_step(self) -> int:
        return int(self.meta["finish_step"])

    def executed_actions(self) -> np.ndarray:
        """The first finish_step actions (float64), checked: ACTION_DIM dimensions, all finite."""
        actions = np.asarray(self.actions.open(), dtype=np.float64)
        where = f"{self.shard}: episode {self.key}, {self.key}.action.npy"
        if actions.ndim != 2 or actions.shape[1] != ACTION_DIM:
            raise ShardError(f"{where}: actions of shape {actions.shape}, expected (N, {ACTION_DIM})")
        executed = actions[: self.finish_step]
        bad = ~np.isfinite(executed)
        if bad.any():
            step, dim = np.argwhere(bad)[0]
            raise ShardError(f"{where}: non-finite action {executed[step, dim]} at step {step}, dimension {dim} "
                             f"({int(bad.sum())} non-finite values)")
        return executed


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def write_shards(
    episodes: Iterable[Episode], out_dir: str | Path, prefix: str = "shard", max_shard_bytes: int = 4 * 1024**3
) -> list[Path]:
    """Write episodes into ``<out_dir>/<prefix>-NNNNNN.tar`` files of at most about ``max_shard_bytes``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    tar, size = None, 0
    try:
        for episode in episodes:
            if episode.video.dtype != np.uint8 or episode.video.ndim != 4 or episode.video.shape[-1] != 3:
                raise ShardError(f"episode {episode.key}: video must be uint8 (T, H, W, 3), got {episode.video.shape}")
            meta = {"finish_step": int(episode.meta.get("finish_step", len(episode.actions))), **episode.meta}
            members = {
                "video.npy": _npy_bytes(episode.video),
                "action.npy": _npy_bytes(episode.actions.astype(np.float32)),
                "meta.json": json.dumps(meta).encode(),
            }
            payload = sum(len(v) for v in members.values())
            if tar is None or (size and size + payload > max_shard_bytes):
                if tar is not None:
                    tar.close()
                paths.append(out_dir / f"{prefix}-{len(paths):06d}.tar")
                tar, size = tarfile.open(paths[-1], "w", format=tarfile.USTAR_FORMAT), 0
            for suffix, data in members.items():
                _add(tar, f"{episode.key}.{suffix}", data)
            size += payload
    finally:
        if tar is not None:
            tar.close()
    return paths


def _npy_header(handle, offset: int, path: str, name: str) -> tuple[int, tuple[int, ...], str]:
    handle.seek(offset)
    try:
        version = np.lib.format.read_magic(handle)
        shape, fortran, dtype = np.lib.format._read_array_header(handle, version)
    except ValueError as exc:
        raise ShardError(f"{path}: member {name} is not a .npy array ({exc})") from None
    if fortran:
        raise ShardError(f"{path}: member {name} is Fortran-ordered; write C-ordered arrays")
    return handle.tell(), tuple(shape), dtype.str


def index_shard(path: str | Path) -> list[EpisodeRef]:
    """All episodes of one tar shard, in file order."""
    path = str(path)
    members: dict[str, dict[str, tarfile.TarInfo]] = {}
    try:
        with tarfile.open(path, "r:") as tar, open(path, "rb") as raw:
            for info in tar:
                if not info.isfile():
                    continue
                key, _, suffix = info.name.partition(".")
                members.setdefault(key, {})[suffix] = info
            episodes = []
            for key, parts in members.items():
                missing = {"video.npy", "action.npy", "meta.json"} - set(parts)
                if missing:
                    raise ShardError(f"{path}: episode {key} lacks {', '.join(sorted(missing))}")
                raw.seek(parts["meta.json"].offset_data)
                meta = json.loads(raw.read(parts["meta.json"].size))
                video_offset, video_shape, video_dtype = _npy_header(raw, parts["video.npy"].offset_data, path, key)
                action_offset, action_shape, action_dtype = _npy_header(raw, parts["action.npy"].offset_data, path, key)
                meta.setdefault("finish_step", action_shape[0])
                episodes.append(
                    EpisodeRef(
                        key,
                        path,
                        ArrayRef(path, video_offset, video_shape, video_dtype),
                        ArrayRef(path, action_offset, action_shape, action_dtype),
                        meta,
                    )
                )
    except tarfile.ReadError as exc:
        raise ShardError(f"{path}: not an uncompressed tar shard ({exc})") from None
    return episodes


def find_shards(pattern: str | Path) -> list[Path]:
    """Shards matching a directory (all ``*.tar`` below it) or a glob; fails when nothing matches."""
    pattern = Path(pattern)
    if pattern.is_dir():
        found = sorted(pattern.rglob("*.tar"))
    else:
        found = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    if not found:
        raise FileNotFoundError(f"no episode shards (*.tar) match {pattern}")
    return found


def index_episodes(patterns: str | Path | list) -> list[EpisodeRef]:
    """Index every episode of every matching shard (sorted by shard path, then file order)."""
    patterns = patterns if isinstance(patterns, list | tuple) else [patterns]
    return [ep for pattern in patterns for shard in find_shards(pattern) for ep in index_shard(shard)]


def iter_episodes(patterns: str | Path | list) -> Iterator[Episode]:
    """Load whole episodes (for conversions and statistics)."""
    for ref in index_episodes(patterns):
        yield Episode(ref.key, np.array(ref.video.open()), np.array(ref.actions.open()), dict(ref.meta))
