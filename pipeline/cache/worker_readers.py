"""One open reader per cache file per process, shared by the tasks a Dask worker runs.

Opening an HDF5 file per video would cost more than reading the video's rows, so workers keep their readers
open between tasks. A stage that ends calls `release_readers` on every worker (`cached_run.run_into_cache`),
so a long-lived external cluster never holds an upstream cache open while a later stage rewrites it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.cache.reader import CacheReader

_READERS: dict[str, CacheReader] = {}


def reader_for(path: str) -> CacheReader:
    """This process's reader of `path`, opened on first use."""
    if path not in _READERS:
        _READERS[path] = CacheReader(path)
    return _READERS[path]


def release_readers(paths: Sequence[str]) -> None:
    """Close and forget this process's readers of `paths` (a caller about to delete or rewrite them)."""
    for path in paths:
        reader = _READERS.pop(path, None)
        if reader is not None:
            reader.close()
