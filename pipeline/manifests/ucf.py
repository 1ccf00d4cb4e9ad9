"""UCF-101-style split lists, and the two benchmarks published with them (VideoEmotion-8, Ekman-6).

Layout (``lists`` defaults to ``root`` for ``ucf``, to the official lists in ``manifests/official/`` for
``ve8`` and ``ek6``)::

    <lists>/classInd.txt            "<1-based index> <Class>" per line (optional for ucf)
    <lists>/trainlist<split_id>.txt "<Class>/<stem>[ <index>]" per line
    <lists>/vallist<split_id>.txt   (optional)
    <lists>/testlist<split_id>.txt  the index is optional: VE-8's test list has none, Ekman-6's has one
    <root>/<Class>/<stem>.<ext>     any common video extension (mp4 preferred when several exist)

The video id is the list entry (``Anger/clip01``). Files may or may not end with a newline, may use CRLF
and may start with a byte-order mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.manifests.common import (
    index_by_stem,
    make_manifest,
    normalise_path,
    read_list_text,
    scan_videos,
)
from pipeline.manifests.format import Manifest, VideoRecord
from pipeline.manifests.registry import register_builder
from pipeline.manifests.result import BuildResult, ManifestError

VE8_CLASSES = ["Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness", "Surprise", "Trust"]
EK6_CLASSES = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
OFFICIAL_LISTS = Path(__file__).resolve().parents[2] / "manifests" / "official"
LIST_FILES = (("train", "trainlist"), ("val", "vallist"), ("test", "testlist"))


@dataclass(frozen=True)
class ListEntry:
    stem: str  # "<Class>/<stem>", the video id
    label: str
    split: str
    source: str  # "<list file>:<line>", for messages
    raw: str  # the whole line: the stem itself when it ends in " <digits>" and no index was given


def read_lines(path: Path) -> list[tuple[int, str]]:
    """Numbered non-blank lines (``#`` comments skipped), whatever the line ending and BOM."""
    text = read_list_text(path)
    numbered = ((i, line.strip()) for i, line in enumerate(text.splitlines(), start=1))
    return [(i, line) for i, line in numbered if line and not line.startswith("#")]


def read_class_index(path: Path) -> list[str]:
    """Class names of a ``classInd.txt``, in index order."""
    rows: dict[int, str] = {}
    for i, line in read_lines(path):
        idx, _, name = line.partition(" ")
        if not idx.isdigit() or not name.strip() or int(idx) in rows:
            raise ManifestError(f"{path}:{i}: expected a new '<index> <Class>', got {line!r}")
        rows[int(idx)] = name.strip()
    return [rows[k] for k in sorted(rows)]


def parse_entry(line: str, split: str, source: str, classes: list[str] | None) -> ListEntry:
    text = line.replace("\\", "/")
    parts = text.rsplit(None, 1)
    stem, index = (parts[0], int(parts[1])) if len(parts) == 2 and parts[1].isdigit() else (text, None)
    # one spelling per video (Anger/./a, Anger\a): the same video listed twice is then caught as such
    stem, text = normalise_path(stem, Path("."), source), normalise_path(text, Path("."), source)
    label = stem.split("/", 1)[0]
    if "/" not in stem:
        raise ManifestError(f"{source}: expected '<Class>/<stem>[ <index>]', got {line!r}")
    if index is not None and classes and (not 1 <= index <= len(classes) or classes[index - 1] != label):
        raise ManifestError(f"{source}: class index {index} does not name class {label!r} in {classes}")
    return ListEntry(stem=stem, label=label, split=split, source=source, raw=text)


def parse_list_file(path: Path, split: str, classes: list[str] | None) -> list[ListEntry]:
    return [parse_entry(line, split, f"{path}:{i}", classes) for i, line in read_lines(path)]


def check_entries(entries: list[ListEntry], classes: list[str]) -> None:
    seen: dict[str, str] = {}
    for e in entries:
        if e.stem in seen:
            raise ManifestError(f"{e.source}: {e.stem!r} is already listed at {seen[e.stem]}")
        seen[e.stem] = e.source
        if e.label not in classes:
            raise ManifestError(f"{e.source}: class {e.label!r} of {e.stem!r} is not in {classes}")


def read_lists(
    lists: Path, split_id: str = "01", classes: list[str] | None = None
) -> tuple[list[str], list[ListEntry]]:
    """Class list and entries of one split of UCF-style lists; ``classes`` fixes the class list."""
    file_classes = read_class_index(lists / "classInd.txt") if (lists / "classInd.txt").is_file() else None
    if classes and file_classes and file_classes != classes:
        raise ManifestError(f"{lists / 'classInd.txt'}: classes {file_classes} differ from {classes}")
    classes = classes or file_classes
    files = [(split, lists / f"{prefix}{split_id}.txt") for split, prefix in LIST_FILES]
    files = [(split, f) for split, f in files if f.is_file()]
    if not files:
        raise ManifestError(f"{lists}: no trainlist{split_id}.txt or testlist{split_id}.txt")
    entries = [e for split, f in files for e in parse_list_file(f, split, classes)]
    classes = classes or sorted({e.label for e in entries})
    check_entries(entries, classes)
    return classes, entries


def resolve(entries: list[ListEntry], files: dict[str, list[str]]) -> tuple[list[VideoRecord], list[str]]:
    """Records of the entries found on disk, and the entries that were not."""
    records, missing = [], []
    for e in entries:
        key = e.stem if e.stem in files else e.raw
        if key in files:
            records.append(VideoRecord(video_id=key, path=files[key][0], label=e.label, split=e.split))
        else:
            missing.append(e.stem)
    return records, missing


def extra_extensions(records: list[VideoRecord], files: dict[str, list[str]]) -> list[str]:
    return [
        f"{r.video_id}: several files {files[r.video_id]}; using {r.path}"
        for r in records
        if len(files[r.video_id]) > 1
    ]


def build_from_lists(
    root: Path, lists: Path, split_id: str = "01", classes: list[str] | None = None
) -> BuildResult:
    classes, entries = read_lists(lists, split_id, classes)
    files = index_by_stem(scan_videos(root))
    records, missing = resolve(entries, files)
    used = {r.video_id for r in records}
    unlisted = [p for stem, paths in files.items() if stem not in used for p in paths]
    warnings = extra_extensions(records, files)
    return BuildResult(make_manifest(records, classes), missing, sorted(unlisted), warnings)


def official_manifest(lists: Path, classes: list[str], ext: str = "mp4") -> Manifest:
    """The manifest of a benchmark's lists alone, paths ``<Class>/<stem>.<ext>`` (no disk needed)."""
    classes, entries = read_lists(lists, "01", classes)
    records = [VideoRecord(e.stem, f"{e.stem}.{ext}", e.label, e.split) for e in entries]
    return make_manifest(records, classes)


@register_builder("ucf")
def build_ucf(root: Path, lists: Path | None = None, *, split_id: str = "01") -> BuildResult:
    return build_from_lists(Path(root), Path(lists or root), str(split_id))


@register_builder("ve8")
def build_ve8(root: Path, lists: Path | None = None, *, split_id: str = "01") -> BuildResult:
    return build_from_lists(Path(root), Path(lists or OFFICIAL_LISTS / "ve8"), str(split_id), VE8_CLASSES)


@register_builder("ek6")
def build_ek6(root: Path, lists: Path | None = None, *, split_id: str = "01") -> BuildResult:
    return build_from_lists(Path(root), Path(lists or OFFICIAL_LISTS / "ek6"), str(split_id), EK6_CLASSES)
