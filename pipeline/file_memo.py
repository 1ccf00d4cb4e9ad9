"""Values computed from a file's bytes (a full hash, a checkpoint's check), kept between runs of a stage that
runs on every ``dvc repro`` while the file stays unchanged, so that an unchanged file is not read again.

An entry is used only while the file's size, modification time, inode and status-change time (ctime: any
write sets it, and no tool can set it back) and the caller's `salt` are those it was computed with; a file
changed within ``settle_ns`` of the computation is not kept, as a coarse clock could not tell a later write
from it (git's "racy" entries). Anything else: computed again. A memo only saves reading: losing it (or
a damaged one) costs time, never a wrong value.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of the whole file, read in chunks (a video or a checkpoint may be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class FileMemo:
    def __init__(self, entries: dict[str, list[str]] | None = None, settle_ns: int = 2_000_000_000) -> None:
        self.old = dict(entries or {})
        self.new: dict[str, list[str]] = {}
        self.settle_ns = settle_ns

    @classmethod
    def load(cls, path: Path) -> FileMemo:
        """The memo at ``path``; empty when absent or unreadable."""
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(entries if isinstance(entries, dict) else None)

    def save(self, path: Path) -> None:
        """Write the entries used by this run (temporary file, then renamed), its folder made if need be;
        nothing when this run used none and there is no earlier file to empty."""
        if not self.new and not path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.new, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(path)

    def get(self, path: Path, compute: Callable[[Path], str], *, st: os.stat_result | None = None,
            salt: str = "") -> str:
        """`compute(path)`, or what it gave last time for the same file and salt. An exception of
        `compute` propagates and nothing is kept."""
        st = st or os.stat(path)
        name = os.path.abspath(path)
        key = f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}:{salt}"
        old = self.old.get(name)
        if isinstance(old, list) and len(old) == 2 and old[0] == key:
            value = old[1]
        else:
            value = compute(path)
            if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < self.settle_ns:
                return value
        self.new[name] = [key, value]
        return value
