"""MediaEval 2015 affective impact task on LIRIS-ACCEDE: builder ``mediaeval2015``.

Accepted layout::

    <root>/ACCEDE00000.mp4 ...   the clips, directly in one folder (any common video extension)
    <lists>                      one annotation file, or a folder of them (default: ``root``); each is
                                 comma- or tab-separated with a header naming (case-insensitively):
        name           the clip, with or without extension: ACCEDE00000 or ACCEDE00000.mp4
        valenceClass   -1, 0 or 1
        arousalClass   -1, 0 or 1
        set            train (or devset), val (or validation), test (or testset); optional column
        film           optional, kept as the extra column ``film``; other columns are ignored

In a folder, every ``.csv``, ``.tsv`` and ``.txt`` file whose header has name, valenceClass and
arousalClass is read (so a train file and a test file may be given side by side); other files are skipped.

The label is the arousal level (calm, neutral, active for -1, 0, 1) and the valence level goes to the extra
column ``valence`` (negative, neutral, positive). Option ``target="valence"`` swaps the two. The video id is
the clip name without extension.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from pipeline.manifests.common import (
    index_by_stem,
    make_manifest,
    read_list_text,
    read_table,
    require_columns,
    scan_videos,
    split_name,
    strip_ext,
)
from pipeline.manifests.format import VideoRecord
from pipeline.manifests.registry import register_builder
from pipeline.manifests.result import BuildResult, ManifestError

LEVELS = {"arousal": ["calm", "neutral", "active"], "valence": ["negative", "neutral", "positive"]}
REQUIRED = ("name", "valenceclass", "arousalclass")
SET_ALIASES = {"devset": "train", "testset": "test"}


def level(value: str, dimension: str, source: str) -> str:
    """Level name of a -1/0/1 class value."""
    if value.strip() not in ("-1", "0", "1"):
        raise ManifestError(f"{source}: {dimension}Class {value!r} is not -1, 0 or 1")
    return LEVELS[dimension][int(value) + 1]


def is_annotation(path: Path) -> bool:
    lines = read_list_text(path).splitlines()[:1]
    columns = {c.strip().lower() for c in re.split(r"[\t,]", lines[0])} if lines else set()
    return set(REQUIRED) <= columns


def annotation_files(lists: Path) -> list[Path]:
    if lists.is_file():
        return [lists]
    found = sorted(lists.glob("*")) if lists.is_dir() else []
    files = [p for p in found if p.suffix.lower() in (".csv", ".tsv", ".txt") and is_annotation(p)]
    if not files:
        raise ManifestError(f"{lists}: no annotation file with columns name, valenceClass, arousalClass")
    return files


def read_annotations(lists: Path) -> list[tuple[str, dict[str, str]]]:
    """(source line, row with lower-case keys) of every annotation row; a clip named twice raises."""
    out, seen = [], {}
    for f in annotation_files(lists):
        rows = [(line, {k.lower(): v for k, v in row.items()}) for line, row in read_table(f)]
        require_columns(f, rows, REQUIRED)
        for line, row in rows:
            name, source = strip_ext(row["name"]), f"{f}:{line}"
            if name in seen:
                raise ManifestError(f"{source}: clip {name!r} is already annotated at {seen[name]}")
            seen[name] = source
            out.append((source, row))
    return out


def clip_record(row: dict[str, str], source: str, target: str) -> VideoRecord:
    """Record of one annotation row; its path is the clip name until the file is found."""
    other = "valence" if target == "arousal" else "arousal"
    extra = {other: level(row[f"{other}class"], other, source)}
    extra.update({"film": row["film"]} if row.get("film") else {})
    split = split_name(SET_ALIASES.get(row.get("set", "").lower(), row.get("set", "")), source)
    label = level(row[f"{target}class"], target, source)
    return VideoRecord(strip_ext(row["name"]), row["name"], label, split, extra)


@register_builder("mediaeval2015")
def build_mediaeval2015(root: Path, lists: Path | None = None, *, target: str = "arousal") -> BuildResult:
    if target not in LEVELS:
        raise ManifestError(f"mediaeval2015: target {target!r} is not one of {sorted(LEVELS)}")
    root = Path(root)
    annotated = [clip_record(row, s, target) for s, row in read_annotations(Path(lists or root))]
    files = index_by_stem(p for p in scan_videos(root) if "/" not in p)
    records = [replace(r, path=files[r.video_id][0]) for r in annotated if r.video_id in files]
    missing = [r.path for r in annotated if r.video_id not in files]
    used = {r.video_id for r in records}
    unlisted = [p for stem, paths in files.items() if stem not in used for p in paths]
    return BuildResult(make_manifest(records, LEVELS[target]), missing, unlisted)
