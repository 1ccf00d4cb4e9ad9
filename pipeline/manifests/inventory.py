"""What the dataset folder holds, for the manifest and for DVC: each manifest video's path under the dataset
root, size and fingerprint (`source_fingerprint`), and the files named like videos that are no video file.

DVC used to hash ``dataset.root`` itself: one dangling symbolic link or unreadable file aborted every
``dvc repro``, and a FIFO named like a video hung it forever (hashing reads it). The manifest stage is now
the one place that looks at the folder, cheaply and on every run, and writes ``inventory.csv``
(``path,size,fingerprint`` per manifest video); ``decode`` depends on that file, so a changed or added video
still re-runs it. Not the modification time: a clone, ``dvc checkout`` into an experiment's temporary folder,
a copy to a colleague's disk or a move of the dataset changes it without changing a byte, and every one of
those would re-run the whole extraction (docs/team.md).
Entries that are not readable regular files (FIFOs, sockets, devices, dangling links,
folders named like videos, files that cannot be opened) are rejected with the reason, like a bad video,
and never opened for reading: only ``stat`` touches them, and a FIFO is never opened at all.
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import replace
from pathlib import Path

from pipeline.manifests.fingerprint import source_fingerprint
from pipeline.manifests.format import Manifest
from pipeline.manifests.result import BuildResult

INVENTORY_COLUMNS = ("path", "size", "fingerprint")


def not_a_video_file(path: Path) -> str | None:
    """Why ``path`` cannot be read as a video file, or None for a readable regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "dangling symbolic link" if os.path.islink(path) else "file not found"
    except OSError as e:
        return f"cannot be looked at ({e.strerror})"
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISDIR, "a directory"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"))
    for test, kind in kinds:
        if test(st.st_mode):
            return f"{kind}, not a video file"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    try:  # permission bits alone do not say (root reads a chmod 000 file); opening does
        os.close(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)))
    except OSError as e:
        return f"unreadable ({e.strerror})"
    return None


def take_inventory(result: BuildResult, root: Path) -> tuple[BuildResult, list[tuple[str, int, str]]]:
    """The result without the videos that are not readable files (added to ``rejected``), and the
    inventory rows (path, size, fingerprint) of the videos kept, in manifest order."""
    rows, kept = [], []
    rejected = dict(result.rejected)
    for record in result.manifest.records:
        full = record.resolve(root)
        reason = not_a_video_file(full)
        if reason:
            rejected[record.path] = reason
            continue
        st = full.stat()
        rows.append((record.path, st.st_size, source_fingerprint(full)))
        kept.append(record)
    manifest = Manifest(records=kept, classes=list(result.manifest.classes))
    return replace(result, manifest=manifest, rejected=sorted(rejected.items())), rows


def write_inventory(rows: list[tuple[str, int, str]], path: Path) -> None:
    """Write the inventory CSV (temporary file, then renamed: never half written)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(INVENTORY_COLUMNS)
        w.writerows(rows)
    tmp.replace(path)
