"""Disk space for a cache writer: refuse an entry the disk cannot hold, and keep a reserve to close with.

An HDF5 write that fails half-way (a full disk, a quota, a file-size limit) leaves the library unable to
flush, and a file whose last metadata writes were cut can list an entry whose data was never written
(h5py swallows the failed write of a dataset's chunks when it closes). So the writer checks before each
entry that the disk has the entry's bytes and a margin free, and holds a small reserve file beside the
cache while it is open: when a write fails anyway (a quota that `statvfs` does not show, another process
filling the disk) it deletes the reserve, which gives HDF5 the room to drop the half-written entry and
close the file cleanly. `errno` text is taken from HDF5's message so the user reads the OS's reason.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

MARGIN_BYTES = 64 << 20     # free space kept beyond an entry's bytes: HDF5's metadata, other writers
RESERVE_BYTES = 16 << 20    # the reserve file: room to close a file after a failed write


class Reserve:
    """A file of `RESERVE_BYTES` allocated next to `path` (`<name>.reserve`), deleted by `release`. Where
    the file system cannot allocate ahead (no fallocate), or the disk cannot spare it, there is none."""

    def __init__(self, path: Path) -> None:
        self.path = path.with_name(path.name + ".reserve")
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError:
            self.held = False
            return
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
            self.held = True
        except OSError:
            self.held = False
        finally:
            os.close(fd)
        if not self.held:
            self.path.unlink(missing_ok=True)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self.held = False


def free_bytes(path: Path) -> int:
    """Bytes a non-root process may still write on `path`'s file system (`statvfs`; quotas not seen)."""
    return shutil.disk_usage(path).free


def shortage(folder: Path, needed: int) -> str | None:
    """Why `needed` bytes (plus the margin) cannot be written in `folder` now, or None when they can."""
    free = free_bytes(folder)
    if free >= needed + MARGIN_BYTES:
        return None
    return (f"{_mb(free)} free on its disk, {_mb(needed)} needed for the entry and {_mb(MARGIN_BYTES)} kept "
            "free")


def forecast(cache: Path, entries: int, pending: int) -> str | None:
    """A warning when `pending` more entries, at the mean size of the `entries` the cache file holds, would
    not fit on its disk, else None (and None for a cache without entries yet: nothing to go by)."""
    if entries == 0 or pending == 0 or not cache.is_file():
        return None
    mean = cache.stat().st_size / entries
    needed, free = mean * pending, free_bytes(cache.parent)
    if needed + MARGIN_BYTES <= free:
        return None
    fits = max(0, int((free - MARGIN_BYTES) // max(mean, 1)))
    return (f"the {pending} videos to compute need about {_mb(int(needed))} at {cache.name}'s "
            f"{_mb(int(mean))} an entry, and its disk has {_mb(free)} free: the stage will stop after about "
            f"{fits} of them "
            "(free space now, or re-run after it stops: it resumes)")


def os_reason(exc: BaseException) -> str:
    """The OS's reason inside an HDF5 error ("No space left on device (errno 28)"), else the message's
    first line."""
    text = str(exc)
    found = re.search(r"errno = (\d+), error message = '([^']+)'", text)
    if found:
        return f"{found.group(2)} (errno {found.group(1)})"
    return text.splitlines()[0] if text else type(exc).__name__


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"
