"""The layout every cache file shares.

    /                    attrs: format, stage, config (JSON), config_hash, weights ("random" or sha256),
                                package_version, created, updated
    /videos/<key>/       one complete entry per video; attrs: video_id, config_hash, written, sha256 (of
                         its arrays: `arrays_digest`)
        <dataset>        arrays, as documented by the stage that writes them; every array of
                         per-row features has a matching `<name>_times_ms` (rows, 2) int64 array holding
                         each row's start and end time in milliseconds, and the entry records
                         `source_fps`, so modalities can be aligned
    /incomplete/<key>/   an entry being written; moved to /videos only once complete, deleted on reopen

`key` is the video id percent-encoded (ids contain "/", which HDF5 reads as nesting).
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, unquote

import h5py
import numpy as np

FORMAT = "vemo-cache/1"
VIDEOS = "videos"
INCOMPLETE = "incomplete"
CHUNK_BYTES = 1 << 20     # HDF5's default chunk cache per dataset


def chunk_shape(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    """The chunks of a compressed (non-empty) array: `(1,) * (k - 1) + (c,) + shape[k:]`, for the smallest
    k whose trailing block `shape[k:]` fits in 1 MiB and as many (c) of those blocks as fit. An array of up
    to 1 MiB is one chunk, a multi-view array is chunked per view (or per snippet of a view), and a slice
    along the leading axes reads only its own chunks. h5py's own guess cuts image arrays into 16-64 KiB
    tiles across rows, and reading 4 keyframes (786 KB) then spends 5 of its 11 ms on HDF5's work per
    chunk (bench/README.md, deliverable 3)."""
    k = next(k for k in range(len(shape) + 1) if math.prod(shape[k:]) * itemsize <= CHUNK_BYTES)
    if k == 0:
        return tuple(shape)
    fit = CHUNK_BYTES // (math.prod(shape[k:]) * itemsize)
    return (1,) * (k - 1) + (max(1, min(shape[k - 1], fit)),) + tuple(shape[k:])

def readable_entries(videos: h5py.Group) -> tuple[list[h5py.Group], list[str]]:
    """The entries of a /videos group whose header and attributes can be read, and the keys of those that
    cannot: a link whose object was never written, when a write failed half-way in code before the
    writer checked its flushes (pipeline/cache/space.py)."""
    groups, broken = [], []
    for key in videos:
        try:
            group = videos[key]
            str(group.attrs["video_id"])
        except (KeyError, OSError, RuntimeError):
            broken.append(key)
        else:
            groups.append(group)
    return groups, broken


def entry_key(video_id: str) -> str:
    return quote(video_id, safe="")


def id_from_key(key: str) -> str:
    return unquote(key)


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over every array's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.reshape(-1).view(np.uint8))     # the buffer itself: no copy
    return digest.hexdigest()


_UNLOCKED: set[str] = set()     # files this process opened without HDF5's lock, said once each


def open_cache_file(path: str | Path, mode: str = "r") -> h5py.File:
    """`h5py.File(path, mode)`; where the file system has no file locks (ENOLCK: an NFS mount without a
    lock daemon, common on lab clusters), HDF5 refuses every open with "unable to lock file", which is no
    other process holding it: the file is opened without HDF5's lock instead, said once per file and
    process; later opens of it in the process skip the lock too (HDF5 refuses a file already open under
    other locking flags). A DVC run locks its project, so only two stages started by hand on one cache
    could collide."""
    key = os.path.abspath(path)
    if key not in _UNLOCKED:
        try:
            return h5py.File(path, mode)
        except OSError as exc:
            if exc.errno != errno.ENOLCK:
                raise
        _UNLOCKED.add(key)
        print(f"cache {path}: its file system offers no file locks ({os.strerror(errno.ENOLCK)}: an NFS "
              "mount without a lock daemon?); opened without HDF5's lock: run one stage at a time on it",
              file=sys.stderr)
    return h5py.File(path, mode, locking=False)


# HDF5's own locking messages ("unable to lock file", "file locking disabled", "already open"); a plain
# substring "lock" also matches "sblock" (the superblock) in a truncated file's message.
LOCKED = re.compile(r"\block(ed|ing)?\b|already open", re.IGNORECASE)


def open_failure(path: Path, exc: OSError) -> str:
    """One line on why h5py could not open a cache file, and what to do about it."""
    if LOCKED.search(str(exc)):
        return (f"cache {path} is open in another process ({exc}); let it finish or stop it, then re-run")
    return (f"cache {path} is damaged (truncated or not HDF5: {exc}); delete it and re-run the stage that "
            f"writes it (`dvc repro`), or see which entries survive with `vemo cache verify {path}`")
