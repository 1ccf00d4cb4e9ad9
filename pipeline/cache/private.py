"""Make a file this process is about to modify in place its own, so that DVC's cache never changes.

DVC's cache types `hardlink` and `symlink` (docs/team.md) put the cache object itself in the workspace:
a DVC-tracked output is then a second name of, or a link to, a file under `.dvc/cache`. The stages open
their persistent outputs (the HDF5 caches, a head's model folder) to append to them, and an append through
such a link would change the cached object that other experiments, clones and `dvc push` read: DVC makes
those files read-only, which does not stop root. So before writing, a linked file is replaced by a private
copy (a temporary file in the same folder, renamed over the link), exactly what `dvc unprotect` does.
Regular files with one name are left as they are: no copy in the common case.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path


def is_shared(path: Path) -> bool:
    """Whether writing to `path` would write to another name of the same data (a link, or a hard link)."""
    if path.is_symlink():
        return True
    try:
        return os.stat(path).st_nlink > 1
    except FileNotFoundError:
        return False


def make_private(path: str | Path) -> bool:
    """Replace `path` by a private, writable copy when it is linked to other data; True when it copied.
    A folder is walked: each linked file in it is copied. A missing path is left alone."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        copied = False
        for folder, _, names in os.walk(path):
            for name in names:
                copied = make_private(Path(folder) / name) | copied
        return copied
    if not is_shared(path):
        if path.exists() and not os.access(path, os.W_OK):
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        return False
    if path.is_symlink() and not path.exists():
        return False    # a dangling link: nothing to copy, and the writer reports the missing file
    tmp = path.with_name(f".{path.name}.private-{os.getpid()}")
    try:
        shutil.copyfile(path, tmp)     # follows a symbolic link; contents only, not the read-only mode
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)          # the link (or this name of the shared inode) goes, the data stays
    finally:
        tmp.unlink(missing_ok=True)
    return True
