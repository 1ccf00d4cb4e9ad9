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

import hashlib
from collections.abc import Mapping
from urllib.parse import quote, unquote

import numpy as np

FORMAT = "vemo-cache/1"
VIDEOS = "videos"
INCOMPLETE = "incomplete"


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
        digest.update(array.tobytes())
    return digest.hexdigest()
