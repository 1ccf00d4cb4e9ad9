"""What a worker process keeps between the tasks it runs: built networks and open cache readers.

Opening an HDF5 file per video would cost more than reading the video's rows, and building a network per
task more than running it, so both live as long as the worker. A stage that ends calls `release_readers`
on every worker (`cached.run_into_cache`), so that a long-lived external cluster never holds an upstream
cache open while a later stage rewrites it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from pipeline.cache.reader import CacheReader

K = TypeVar("K")
T = TypeVar("T")

_READERS: dict[str, CacheReader] = {}
_BUILDING = threading.Lock()


def once_per_worker(store: dict[K, T], key: K, build: Callable[[], T]) -> T:
    """`store[key]`, built on first use. The lock matters: two tasks on one worker's threads would
    otherwise build at the same time, and draws from torch's global generator would interleave, so
    each would get different "seeded" random weights."""
    with _BUILDING:
        if key not in store:
            store[key] = build()
        return store[key]


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
