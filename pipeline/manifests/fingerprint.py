"""What identifies a video file's bytes cheaply: the manifest's inventory, the caches' entries and the
decode worker's check for a file replaced mid-read all use it."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def source_fingerprint(path: str | Path, block: int = 1 << 16) -> str:
    """Size and a hash of the first and last 64 KiB of a video file ("" when it cannot be read): an entry
    made from another version of the file is recomputed. Not the mtime, which `dvc checkout`, a copy or a
    regenerated demo change without changing the video; not a full hash, which would read the dataset."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.sha256(f.read(block))
            f.seek(max(0, size - block))
            digest.update(f.read(block))
    except OSError:
        return ""
    return f"{size}:{digest.hexdigest()[:16]}"
