"""Helpers shared by the builders: finding video files, deriving video ids, checking records."""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.manifests.inventory import not_a_video_file
from pipeline.manifests.result import ManifestError

# In order of preference when one listed stem matches several files. The later ones are camcorder
# (AVCHD .mts/.m2ts, DV), DVD (.vob), broadcast (.ts, .mxf) and older web formats: a folder scan that
# leaves them out loses videos without a word (a TypeScript .ts file is probed and rejected, said).
VIDEO_EXTENSIONS = ("mp4", "avi", "mkv", "webm", "mov", "flv", "m4v", "mpg", "mpeg", "wmv", "3gp",
                    "ts", "mts", "m2ts", "vob", "ogv", "mxf", "dv", "f4v", "asf", "m2v", "divx", "3g2")

# Top-level folder names that mean a split, as datasets spell them.
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def video_ext(path: str) -> str:
    """The lower-case extension of a video file name, or "" when it is not a video."""
    ext = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return ext if ext in VIDEO_EXTENSIONS else ""


def strip_ext(path: str) -> str:
    return path[: -len(video_ext(path)) - 1] if video_ext(path) else path


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


class FolderScan(NamedTuple):
    videos: list[str]                   # readable video files, posix paths relative to the root, sorted
    rejected: list[tuple[str, str]]     # (path, reason): named like a video but not a readable file
    others: dict[str, int]              # extension ("" for none) -> count of the other files, not hidden


def scan_folder(root: Path) -> FolderScan:
    """Every readable video file below `root`, each entry named like a video that is not one (a FIFO,
    socket, dangling link, folder, unreadable file) with the reason, and how many other files there are
    by extension (so that a video format missing from VIDEO_EXTENSIONS can be said, not lost); hidden
    entries skipped.

    Hidden names are skipped because macOS copies leave ``._clip.mp4`` resource files beside each video.
    """
    if not root.is_dir():
        raise ManifestError(f"dataset root {root} is not a folder")
    videos, rejected, others = [], [], Counter()
    for p in root.rglob("*"):
        rel = p.relative_to(root)
        if _hidden(rel):
            continue
        if not video_ext(rel.name):
            if p.is_file():
                others[p.suffix.lower()] += 1
            continue
        reason = not_a_video_file(p)
        if reason:
            rejected.append((rel.as_posix(), reason))
        else:
            videos.append(rel.as_posix())
    return FolderScan(sorted(videos), sorted(rejected), dict(sorted(others.items())))


def scan_videos(root: Path) -> list[str]:
    """The readable video files of ``scan_folder``."""
    return scan_folder(root)[0]


def index_by_stem(rel_paths: Iterable[str]) -> dict[str, list[str]]:
    """Map each path without extension to its files, the preferred extension first."""
    index: dict[str, list[str]] = defaultdict(list)
    for rel in rel_paths:
        index[strip_ext(rel)].append(rel)
    for files in index.values():
        files.sort(key=lambda p: VIDEO_EXTENSIONS.index(video_ext(p)))
    return dict(index)


def assign_ids(paths: Iterable[str]) -> dict[str, str]:
    """Video id of each path: the path without extension, or with it when a sibling differs only by it."""
    paths = list(paths)
    counts = Counter(strip_ext(p) for p in paths)
    return {p: (p if counts[strip_ext(p)] > 1 else strip_ext(p)).lstrip("/") for p in paths}


def check_records(records: list[VideoRecord], classes: list[str]) -> None:
    """Raise naming the file when a label is outside the class list or two files share one id."""
    owner: dict[str, str] = {}
    for r in records:
        if r.video_id in owner:
            raise ManifestError(f"video id {r.video_id!r} is given to both {owner[r.video_id]} and {r.path}")
        owner[r.video_id] = r.path
        if r.label not in classes:
            raise ManifestError(f"{r.path}: label {r.label!r} is not in the class list {classes}")


def make_manifest(records: list[VideoRecord], classes: list[str]) -> Manifest:
    check_records(records, classes)
    return Manifest(records=records, classes=list(classes))


def read_list_text(path: Path) -> str:
    """A list file's text, UTF-8 with or without a BOM; ManifestError naming the line of a byte that is not
    UTF-8 (a list saved by a spreadsheet in Latin-1 or Windows-1252), which was a traceback."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8: save the list as "
                            "UTF-8") from None


def read_table(path: Path) -> list[tuple[int, dict[str, str]]]:
    """Numbered rows of a CSV (or tab-separated) file with a header, keyed by stripped column name.

    The text goes to the csv module whole (``newline=""``), so a quoted field keeps a newline it holds and
    the path checks below can refuse it; a row's number is the line it starts on. Values lose surrounding
    spaces and tabs only, so a newline at the end of a quoted path is still seen. A row is numbered by the
    line it ends on.
    """
    text = read_list_text(path)
    first = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if "\t" in first else ",")
    rows = []
    for row in reader:
        clean = {k.strip(): (v or "").strip(" \t") for k, v in row.items() if isinstance(k, str)}
        if any(clean.values()):
            rows.append((reader.line_num, clean))
    return rows


# A control character in a listed path is a broken list (a quoted newline, a pasted tab), never a file name
# meant to be read.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_path(raw: str, root: Path, source: str) -> str:
    """The one spelling of a listed path: slashes, ``.`` and ``..`` resolved lexically, relative to ``root``
    when it lies below it (no leading ``./``), absolute otherwise.

    ``a\\x.mp4``, ``./a/x.mp4`` and ``a/../a/x.mp4`` all become ``a/x.mp4``, so one file gets one id and
    cannot sit in two splits. Lexical, not ``realpath``: a symlinked folder keeps the name the list gives.
    Raises naming ``source`` (file:line) for an empty path, a control character, or a relative path whose
    ``..`` leaves the root.
    """
    if CONTROL.search(raw):
        raise ManifestError(f"{source}: path {raw!r} holds a control character (a newline or tab inside "
                            "the path field?); fix the list")
    text = raw.strip().replace("\\", "/")
    if not text:
        raise ManifestError(f"{source}: empty path")
    if posixpath.isabs(text) or re.match(r"^[A-Za-z]:/", text):
        norm = posixpath.normpath(text)
        base = posixpath.normpath(Path(os.path.abspath(root)).as_posix())
        return norm[len(base) + 1:] if norm.startswith(base + "/") else norm
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../"):
        raise ManifestError(f"{source}: path {raw!r} leaves the dataset root {root}")
    if norm == ".":
        raise ManifestError(f"{source}: path {raw!r} names the dataset root itself, not a video")
    return norm


def require_columns(path: Path, rows: list[tuple[int, dict[str, str]]], required: Iterable[str]) -> None:
    absent = [c for c in required if rows and c not in rows[0][1]]
    if not rows:
        raise ManifestError(f"{path}: no rows under a header")
    if absent:
        raise ManifestError(f"{path}: header lacks column(s) {absent}; found {sorted(rows[0][1])}")


def split_name(value: str, source: str) -> str:
    """``train``/``val``/``test``/"" from a split as datasets spell it (``validation``, ``Test``...)."""
    key = value.strip().lower()
    if key and key not in SPLIT_FOLDERS:
        raise ManifestError(f"{source}: split {value!r} is not one of train, val, validation, test")
    return SPLIT_FOLDERS.get(key, "")
