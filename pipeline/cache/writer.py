"""The single writer of a cache file.

Only the stage's driver process writes (Dask workers return arrays to it, or arrays they compressed
themselves: pipeline/cache/packed.py), so no two processes ever write one HDF5 file. An entry is
built under /incomplete and moved to /videos once every array and attribute is in place, then the
file is flushed: a reader, or a resumed run after a kill, sees whole entries or none. Each entry
records the sha256 of its arrays (`vemo cache verify` recomputes it). An entry the disk cannot hold is
refused before it is written, and a write that fails anyway stops the stage with the entries before it
intact (pipeline/cache/space.py). The file uses HDF5's default
(earliest) format: the newer format sets a consistency flag that a killed writer leaves behind,
making the file unopenable without `h5clear`.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline import __version__
from pipeline.cache.finite import count_nonfinite, refusal
from pipeline.cache.layout import (
    FORMAT,
    INCOMPLETE,
    LOCKED,
    VIDEOS,
    arrays_digest,
    chunk_shape,
    entry_key,
    open_cache_file,
    open_failure,
    readable_entries,
)
from pipeline.cache.packed import PackedArray, PackedEntry
from pipeline.cache.private import make_private
from pipeline.cache.space import Reserve, os_reason, shortage
from pipeline.errors import BadEntry, CacheUnavailable


class StaleCacheError(RuntimeError):
    """The cache file was written with another configuration or other weights."""


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _readable(path: Path) -> bool:
    try:
        with open_cache_file(path, "r"):
            return True
    except OSError:
        return False


def entry_sources(file: h5py.File, config_hash: str) -> dict[str, str]:
    """Video id -> the `source` attribute of each readable entry of `file` written with `config_hash`."""
    groups = readable_entries(file[VIDEOS])[0] if VIDEOS in file else []
    return {
        str(g.attrs["video_id"]): str(g.attrs.get("source", "")) for g in groups
        if g.attrs.get("config_hash") == config_hash
    }


def cached_sources(path: str | Path, config_hash: str) -> dict[str, str]:
    """`entry_sources` of the cache at `path`, read without writing to it ({} where there is no readable
    file): what a stage would skip, known before it opens the cache for writing or starts any worker."""
    try:
        with open_cache_file(path, "r") as file:
            return entry_sources(file, config_hash)
    except OSError:
        return {}


def _dataset_options(array: np.ndarray, compression: str | None, level: int) -> dict[str, Any]:
    if compression is None or array.size == 0 or array.ndim == 0:
        return {}
    options: dict[str, Any] = {"compression": compression, "shuffle": array.dtype.itemsize > 1,
                               "chunks": chunk_shape(array.shape, array.dtype.itemsize)}
    if compression == "gzip":
        options["compression_opts"] = level
    return options


class CacheWriter:
    """Open (or create) a cache file for one stage's configuration.

    Args:
        path: the .h5 file.
        stage: the stage or extractor name recorded in the file.
        config: every parameter that changes the cached values (hashed; stored as JSON).
        weights: "random" or the sha256 of the weights file.
        on_mismatch: what to do when the file holds entries of another configuration: "recompute"
            (default; such entries count as missing and are overwritten) or "error".
        compression: "gzip", "lzf" or None; level: gzip level.
        nan_rows: arrays whose rows may be wholly NaN, the stage's "none" marker (faces: no face in that
            frame); any other NaN or inf is refused (pipeline/cache/finite.py).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        stage: str,
        config: Mapping[str, Any],
        config_hash: str,
        weights: str = "none",
        on_mismatch: str = "recompute",
        compression: str | None = "gzip",
        level: int = 1,
        nan_rows: tuple[str, ...] = (),
    ) -> None:
        self.path = Path(path)
        self.nan_rows = nan_rows
        self.config_hash = config_hash
        self.compression, self.level = compression, level
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = self._open()
        self._check_and_stamp(stage, dict(config), weights, on_mismatch)
        try:
            if INCOMPLETE in self.file:
                del self.file[INCOMPLETE]
        except (KeyError, OSError, RuntimeError) as exc:   # a write failed and the file could not be closed
            self.file.close()
            self.file = self._afresh(f"an entry left half-written: {exc}")
            self._check_and_stamp(stage, dict(config), weights, on_mismatch)
        # both groups exist from here on, so writing an entry changes neither the root nor /videos until
        # its final move: a write that fails half-way leaves them as the last flush did
        self.file.create_group(INCOMPLETE)
        self._drop_broken_entries()
        self.file.flush()
        self.reserve = Reserve(self.path)

    def _open(self) -> h5py.File:
        """Open for appending. A file linked into DVC's cache is first made this stage's own
        (`private`). Only a file that cannot even be read is moved aside (never deleted); a file that is
        merely open elsewhere (HDF5's lock) is an error, so no work is thrown away."""
        if make_private(self.path):
            print(f"cache {self.path} was a link into DVC's cache: appending to a private copy")
        try:
            return open_cache_file(self.path, "a")
        except OSError as exc:
            if LOCKED.search(str(exc)):
                raise CacheUnavailable(open_failure(self.path, exc)) from exc
            if _readable(self.path):
                raise CacheUnavailable(f"cache {self.path} can be read but not written ({exc}): check the "
                                       "permissions of the file and its folder, then re-run") from exc
            return self._afresh(f"truncated or not HDF5: {exc}")

    def _afresh(self, damage: str) -> h5py.File:
        """A new empty file in place of the damaged one, which is moved aside (never deleted)."""
        aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
        shutil.move(self.path, aside)
        print(f"cache {self.path} is damaged ({damage}); moved aside to {aside} (delete it once you do not "
              "need it), starting afresh")
        return open_cache_file(self.path, "a")

    def _drop_broken_entries(self) -> None:
        videos = self.file.require_group(VIDEOS)
        for key in readable_entries(videos)[1]:
            del videos[key]
            print(f"cache {self.path}: entry {key} was never completely written (a write that failed "
                  "half-way); removed, it is computed again", flush=True)

    def _check_and_stamp(self, stage: str, config: dict[str, Any], weights: str, on_mismatch: str) -> None:
        attrs = self.file.attrs
        old_hash = attrs.get("config_hash")
        if old_hash is not None and old_hash != self.config_hash and on_mismatch == "error":
            raise StaleCacheError(
                f"{self.path} was written with configuration {old_hash}, not {self.config_hash}: "
                "delete it or run with on_mismatch=recompute"
            )
        stamp = {
            "format": FORMAT, "stage": stage, "config": json.dumps(config, sort_keys=True, default=str),
            "config_hash": self.config_hash, "weights": weights, "package_version": __version__,
        }
        if any(attrs.get(k) != v for k, v in stamp.items()):
            attrs.update({**stamp, "updated": _now()})
            attrs.setdefault("created", attrs["updated"])

    def complete_ids(self) -> set[str]:
        """Ids of entries written with the current configuration hash."""
        return set(self.complete_sources())

    def entries(self) -> int:
        """How many entries the file holds, of any configuration (they all take its space)."""
        return len(self.file[VIDEOS])

    def complete_sources(self) -> dict[str, str]:
        """Video id -> the `source` attribute (the input file's fingerprint) of each current entry."""
        return entry_sources(self.file, self.config_hash)

    def write(self, video_id: str, arrays: Mapping[str, np.ndarray] | PackedEntry,
              attrs: Mapping[str, Any]) -> None:
        """Store one entry; a `PackedEntry` (compressed by a worker) needs a gzip writer. Raises BadEntry,
        writing nothing, when an array holds NaN or inf (`finite.refusal`). Raises CacheUnavailable, with
        this writer closed and every entry before this one intact, when the disk cannot hold the entry or
        a write fails: no later entry could be written either."""
        if isinstance(arrays, PackedEntry):
            if self.compression != "gzip":
                raise ValueError(f"a packed (gzip) entry given to a {self.compression} cache writer")
            plain = None
        else:
            plain = {n: np.asarray(v) for n, v in arrays.items()}
        found = arrays.nonfinite if plain is None else count_nonfinite(plain)
        if reason := refusal(found, self.nan_rows):
            raise BadEntry(reason)
        needed = arrays.nbytes if plain is None else sum(a.nbytes for a in plain.values())
        short = shortage(self.path.parent, needed)
        if short:
            raise self._stop(video_id, short)
        try:
            self._write_entry(video_id, arrays if plain is None else plain, attrs)
            return
        except (OSError, RuntimeError) as exc:
            self.reserve.release()
            reason = os_reason(exc)
        # out of the except block, its traceback is gone with the half-written datasets it held open: the
        # file can close now
        raise self._stop(video_id, reason, failed=True)

    def _write_entry(self, video_id: str, arrays: Mapping[str, np.ndarray] | PackedEntry,
                     attrs: Mapping[str, Any]) -> None:
        key = entry_key(video_id)
        staging = self.file[INCOMPLETE]
        if key in staging:
            del staging[key]
        group = staging.create_group(key)
        if isinstance(arrays, PackedEntry):
            digest = arrays.sha256
            datasets = [self._write_dataset(group, name, value, arrays.level)
                        for name, value in arrays.arrays.items()]
        else:
            digest = arrays_digest(arrays)
            datasets = [self._write_dataset(group, name, value, self.level) for name, value in arrays.items()]
        group.attrs.update({k: v for k, v in attrs.items() if v is not None})
        group.attrs.update({"video_id": video_id, "config_hash": self.config_hash, "written": _now(),
                            "sha256": digest})
        # the datasets are still open, so their chunks are written by this flush and a failure raises here
        # (h5py ignores one raised when a dataset closes): nothing is moved to /videos unless it is on disk
        self.file.flush()
        del datasets
        final = f"{VIDEOS}/{key}"
        if final in self.file:
            del self.file[final]
        self.file.move(f"{INCOMPLETE}/{key}", final)
        self.file.attrs["updated"] = group.attrs["written"]
        self.file.flush()

    def _stop(self, video_id: str, reason: str, *, failed: bool = False) -> CacheUnavailable:
        """Close the cache after the entry of `video_id` could not be written, and say so in one line."""
        try:
            kept = f"its {len(self.file[VIDEOS])} entries are kept"
        except (KeyError, OSError, RuntimeError):
            kept = "the entries before it are kept"
        self.reserve.release()          # the room HDF5 needs to drop the half-written entry and close
        try:
            self.close()
        except (KeyError, OSError, RuntimeError):
            # the file keeps what its last flush wrote; the next writer drops a broken entry, or moves a
            # damaged file aside (never deletes it)
            kept = "the cache could not be closed cleanly: the next run checks it"
        what = "writing the entry of" if failed else "no room for the entry of"
        return CacheUnavailable(
            f"cache {self.path}: {what} {video_id} ({reason}); {kept}. Free space on "
            "its disk (or raise the quota), then re-run: the stage resumes")

    def _write_dataset(self, group: h5py.Group, name: str, value: np.ndarray | PackedArray,
                       level: int) -> h5py.Dataset:
        if isinstance(value, PackedArray):
            dataset = group.create_dataset(name, shape=value.shape, dtype=np.dtype(value.dtype),
                                           chunks=value.chunks, compression="gzip", compression_opts=level,
                                           shuffle=value.shuffle, track_times=False)
            for offset, data in value.pieces:
                dataset.id.write_direct_chunk(offset, data)
            return dataset
        return group.create_dataset(name, data=value, track_times=False,
                                    **_dataset_options(value, self.compression, level))

    def close(self) -> None:
        self.reserve.release()
        if self.file.id.valid:
            if INCOMPLETE in self.file:
                del self.file[INCOMPLETE]
            self.file.close()

    def __enter__(self) -> CacheWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
