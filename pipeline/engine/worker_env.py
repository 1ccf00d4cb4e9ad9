"""What a LocalCluster's worker processes start with: their memory allocator and glibc's trim threshold.

Both are read as a process starts, so they travel through Dask's `pre-spawn-environ`, which the Nanny
writes into this (the driver's) own environment before it spawns a worker. `spawn_environ` puts the
user's own values back first, and `restore_user_environ` once the workers run, so that what one cluster
wrote reaches neither the next cluster nor the driver's other subprocesses.

- MALLOC_TRIM_THRESHOLD_: Dask sets 64 KiB so that workers hand freed memory back at once. glibc then
  also stops adapting its mmap threshold, and the activations of every forward pass are faulted in
  anew: 40.7 ms a row instead of 30.4 (AlexNet, batch 32, 2 workers x 1 thread). Our workers do not get
  it; a value the user's environment sets is kept.
- jemalloc (`allocator: jemalloc`, the default, where the library is installed: `scripts/bootstrap.sh`
  installs Debian's libjemalloc2): without Dask's threshold, glibc keeps what its heap once held, and an
  AlexNet worker's peak RSS grew by about 16 MiB a task (2.0 GiB at 1000 videos; `TrimWhenGrown` bounds
  it at about 1.3 GiB). jemalloc, preloaded and told never to purge (its size classes reuse what a task
  freed), held 1.1 GiB at 1000 videos at glibc's speed (bench/README.md, deliverable 5); its default
  decay, which hands pages back after 10 s, cost up to a fifth of the stage. A user's own LD_PRELOAD or
  MALLOC_CONF wins.
"""

from __future__ import annotations

import ctypes.util
import logging
import os

TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
PRELOAD_ENV = "LD_PRELOAD"
JEMALLOC_CONF_ENV = "MALLOC_CONF"
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
ALLOCATORS = ("jemalloc", "system")

_USER = {name: os.environ.get(name) for name in (TRIM_ENV, PRELOAD_ENV, JEMALLOC_CONF_ENV)}
"""The variables as the user's environment gave them, read before any Nanny could write into it."""

log = logging.getLogger(__name__)


def jemalloc_library() -> str | None:
    """The installed jemalloc's file name (found by the dynamic loader's own search), or None."""
    return ctypes.util.find_library("jemalloc")


def restore_user_environ() -> None:
    """This process's environment back to the user's values of the variables a Nanny writes."""
    for name, value in _USER.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def spawn_environ(allocator: str) -> dict[str, str | None]:
    """Dask's `distributed.nanny.pre-spawn-environ` for our workers (None leaves a variable unset)."""
    if allocator not in ALLOCATORS:
        raise ValueError(f"dask.allocator must be one of {ALLOCATORS}, not {allocator!r}")
    restore_user_environ()
    env = {TRIM_ENV: _USER[TRIM_ENV]}
    if allocator == "jemalloc" and _USER[PRELOAD_ENV] is None:
        library = jemalloc_library()
        if library is None:
            log.warning("dask.allocator is jemalloc, but no jemalloc is installed (Debian: libjemalloc2): "
                        "the workers use the system allocator")
        else:
            env |= {PRELOAD_ENV: library, JEMALLOC_CONF_ENV: _USER[JEMALLOC_CONF_ENV] or JEMALLOC_CONF}
    return env
