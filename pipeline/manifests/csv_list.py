"""Generic CSV builder ``csv``: ``dataset.lists`` names a CSV file with a header.

    path,label[,split][,any extra columns]

- ``path``: the video, relative to ``root`` or absolute (kept relative when it lies under ``root``); every
  spelling of one file is one path (``a\\x.mp4``, ``./a/x.mp4``, ``a/../a/x.mp4``: ``a/x.mp4``), so a file
  listed twice under two spellings is refused like any duplicate, naming both lines; a path that leaves
  ``root`` through ``..`` or holds a control character (a quoted newline) is refused;
- ``label``: the class name, never empty; the class list is the ``classes`` option (index order) or the
  sorted labels of every row, so label indices do not depend on which files are present;
- ``split``: ``train``, ``val`` (or ``validation``), ``test`` or empty;
- other columns are kept as extra columns (``fold``, ``subject``...). Tab-separated files work too.

Rows whose file is absent are reported as missing, videos under ``root`` that no row names as unlisted.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.manifests.common import (
    CONTROL,
    assign_ids,
    make_manifest,
    normalise_path,
    read_table,
    require_columns,
    scan_videos,
    split_name,
)
from pipeline.manifests.format import VideoRecord
from pipeline.manifests.inventory import not_a_video_file
from pipeline.manifests.registry import register_builder
from pipeline.manifests.result import BuildResult, ManifestError

CORE = ("path", "label", "split")


def read_rows(path: Path, root: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(source line, path relative to root, row) of each CSV row; a path listed twice raises."""
    rows = read_table(path)
    require_columns(path, rows, ("path", "label"))
    seen: dict[str, str] = {}
    out = []
    for line, row in rows:
        source = f"{path}:{line}"
        rel = normalise_path(row["path"], root, source)
        if not row["label"]:
            raise ManifestError(f"{source}: {rel!r} has an empty label")
        if CONTROL.search(row["label"]):
            raise ManifestError(f"{source}: label {row['label']!r} holds a control character")
        if rel in seen:
            raise ManifestError(f"{source}: {rel!r} is already listed at {seen[rel]}")
        seen[rel] = source
        out.append((source, rel, row))
    return out


def row_record(video_id: str, rel: str, row: dict[str, str], source: str) -> VideoRecord:
    extra = {k: v for k, v in row.items() if k not in CORE}
    return VideoRecord(video_id, rel, row["label"], split_name(row.get("split", ""), source), extra)


@register_builder("csv")
def build_csv(root: Path, lists: Path | None = None, *, classes: list[str] | None = None) -> BuildResult:
    if lists is None:
        raise ManifestError("builder 'csv' needs dataset.lists: a CSV file with columns path,label[,split]")
    root = Path(root)
    rows = read_rows(Path(lists), root)
    problem = {rel: not_a_video_file(root / rel) for _, rel, _ in rows}
    present = [(s, rel, row) for s, rel, row in rows if problem[rel] is None]
    ids = assign_ids(rel for _, rel, _ in present)
    records = [row_record(ids[rel], rel, row, s) for s, rel, row in present]
    missing = [rel for _, rel, _ in rows if problem[rel] == "file not found"]
    rejected = [(rel, why) for rel, why in problem.items() if why and why != "file not found"]
    unlisted = sorted(set(scan_videos(root)) - {rel for _, rel, _ in rows})
    classes = list(classes) if classes else sorted({row["label"] for _, _, row in rows})
    return BuildResult(make_manifest(records, classes), missing, unlisted, rejected=rejected)
