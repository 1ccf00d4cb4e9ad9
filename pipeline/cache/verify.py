"""Check a cache file entry by entry: `vemo cache verify PATH...`.

Every entry under /videos must be readable to its last byte, carry its video id under the right key,
have been written with the file's configuration hash, and (when the writer recorded one) match the
sha256 of its arrays. Entries still under /incomplete are reported, not counted as bad: the next run
discards them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from pipeline.cache.layout import FORMAT, INCOMPLETE, VIDEOS, arrays_digest, entry_key, open_cache_file


@dataclass
class VerifyReport:
    path: str
    entries: int = 0
    checked: int = 0              # entries whose sha256 was recomputed and matched
    unchecked: int = 0            # entries written before checksums were recorded
    incomplete: int = 0
    problems: dict[str, str] = field(default_factory=dict)   # entry (video id or key) -> what is wrong

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        head = (f"{self.path}: {self.entries} entries, {self.checked} checksums match, "
                f"{self.unchecked} without checksum, {self.incomplete} incomplete (discarded on next run), "
                f"{len(self.problems)} bad")
        return [head, *(f"{self.path}: BAD {name}: {why}" for name, why in sorted(self.problems.items()))]


def _entry_problem(key: str, group: h5py.Group, file_hash: str | None) -> tuple[str, str | None]:
    """(name, problem or None); problem "" means fine without a checksum to compare."""
    video_id = str(group.attrs.get("video_id", ""))
    name = video_id or key
    if not video_id or entry_key(video_id) != key:
        return name, f"entry key {key!r} does not match its video_id attribute {video_id!r}"
    if group.attrs.get("config_hash") != file_hash:
        return name, (f"written with configuration {group.attrs.get('config_hash')!r}, the file's is "
                      f"{file_hash!r} (a stale entry: the next run recomputes it)")
    arrays = {n: np.asarray(d[()]) for n, d in group.items() if isinstance(d, h5py.Dataset)}
    expected = group.attrs.get("sha256")
    if expected is None:
        return name, ""
    if arrays_digest(arrays) != expected:
        return name, "arrays do not match the sha256 recorded when the entry was written"
    return name, None


def verify_cache(path: str | Path) -> VerifyReport:
    """Read every entry of the cache at `path` and report what is wrong, never raising for a bad file."""
    report = VerifyReport(str(path))
    try:
        with open_cache_file(path, "r") as f:
            _verify_file(f, report)
    except OSError as exc:
        report.problems["<file>"] = f"cannot be read as HDF5 ({exc})"
    return report


def _verify_file(f: h5py.File, report: VerifyReport) -> None:
    if f.attrs.get("format") != FORMAT:
        report.problems["<file>"] = f"format {f.attrs.get('format')!r} is not {FORMAT!r}"
        return
    file_hash = f.attrs.get("config_hash")
    report.incomplete = len(f[INCOMPLETE]) if INCOMPLETE in f else 0
    for key, group in (f[VIDEOS].items() if VIDEOS in f else []):
        report.entries += 1
        try:
            name, problem = _entry_problem(key, group, file_hash)
        except (OSError, KeyError, ValueError) as exc:
            name, problem = key, f"unreadable ({type(exc).__name__}: {exc})"
        if problem:
            report.problems[name] = problem
        elif problem == "":
            report.unchecked += 1
        else:
            report.checked += 1
