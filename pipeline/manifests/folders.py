"""Folder-per-class datasets: the generic ``folder`` builder, HEIV and CAER.

Accepted layouts (any common video extension, any depth below the class folder)::

    <root>/<Class>/**/<name>.<ext>            split left empty
    <root>/<split>/<Class>/**/<name>.<ext>    split from the top folder: train, val or validation, test

The second layout is chosen as soon as one top folder is named like a split; videos outside the split
folders (or lying directly in ``root``) are then reported as unlisted. The video id is the path relative
to ``root`` without extension (``train/Anger/0001``), so equal stems in two classes or splits stay distinct.

HEIV (``heiv``) takes either layout with its 7 classes. With the flat layout its split may come from a
CSV given as ``lists`` with columns ``path,split`` (path relative to ``root``, with or without the
extension); videos on disk that the CSV does not name are left out and reported as unlisted.
CAER (``caer``) takes its published layout ``<root>/{train,validation,test}/<Class>/<NNNN>.avi``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipeline.manifests.common import (
    SPLIT_FOLDERS,
    assign_ids,
    make_manifest,
    normalise_path,
    read_table,
    require_columns,
    scan_videos,
    split_name,
    strip_ext,
)
from pipeline.manifests.format import VideoRecord
from pipeline.manifests.registry import register_builder
from pipeline.manifests.result import BuildResult, ManifestError

HEIV_CLASSES = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
CAER_CLASSES = ["Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]


def _top(rel: str) -> str:
    return rel.split("/", 1)[0].lower() if "/" in rel else ""


def place(rel: str, by_split: bool) -> tuple[str, str] | None:
    """(label, split) of a file from its folders, or None when the layout leaves it out."""
    parts = rel.split("/")
    if not by_split:
        return (parts[0], "") if len(parts) >= 2 else None
    if len(parts) < 3 or _top(rel) not in SPLIT_FOLDERS:
        return None
    return parts[1], SPLIT_FOLDERS[_top(rel)]


def folder_result(root: Path, classes: list[str] | None = None) -> BuildResult:
    rels = scan_videos(root)
    by_split = any(_top(r) in SPLIT_FOLDERS for r in rels)
    placed = {r: place(r, by_split) for r in rels}
    kept = [r for r, where in placed.items() if where]
    ids = assign_ids(kept)
    records = [VideoRecord(ids[r], r, *placed[r]) for r in kept]
    unlisted = [r for r, where in placed.items() if where is None]
    warnings = [f"{len(unlisted)} video(s) outside the class folders left out"] if unlisted else []
    classes = classes or sorted({r.label for r in records})
    return BuildResult(make_manifest(records, classes), [], unlisted, warnings)


def ignored_lists(result: BuildResult, name: str, lists: Path | None) -> BuildResult:
    if lists:
        result.warnings.append(f"builder {name!r} reads no lists; ignored {lists}")
    return result


def read_split_csv(path: Path, root: Path) -> dict[str, tuple[str, str]]:
    """Map each listed path (one spelling per file, ``normalise_path``) to its (split, source line)."""
    rows = read_table(path)
    require_columns(path, rows, ("path", "split"))
    splits: dict[str, tuple[str, str]] = {}
    for line, row in rows:
        source = f"{path}:{line}"
        key = normalise_path(row["path"], root, source)
        if key in splits:
            raise ManifestError(f"{source}: {key!r} is already listed at {splits[key][1]}")
        splits[key] = (split_name(row["split"], source), source)
    return splits


def apply_split_csv(result: BuildResult, path: Path, root: Path) -> BuildResult:
    """Keep the videos the CSV names, with its split; report the others both ways."""
    splits = read_split_csv(path, root)
    by_id, records = result.manifest.by_id(), result.manifest.records
    matched = {k: by_id.get(k) or by_id.get(strip_ext(k)) for k in splits}
    chosen = {rec.video_id: splits[k][0] for k, rec in matched.items() if rec}
    kept = [replace(r, split=chosen[r.video_id]) for r in records if r.video_id in chosen]
    unlisted = result.unlisted + [r.path for r in records if r.video_id not in chosen]
    missing = [k for k, rec in matched.items() if rec is None]
    return BuildResult(make_manifest(kept, result.manifest.classes), missing, unlisted, result.warnings)


@register_builder("folder")
def build_folder(root: Path, lists: Path | None = None, *, classes: list[str] | None = None) -> BuildResult:
    return ignored_lists(folder_result(Path(root), classes), "folder", lists)


@register_builder("heiv")
def build_heiv(root: Path, lists: Path | None = None) -> BuildResult:
    result = folder_result(Path(root), HEIV_CLASSES)
    if lists:
        return apply_split_csv(result, Path(lists), Path(root))
    if not any(r.split for r in result.manifest.records):
        result.warnings.append("no train/ and test/ folders and no split CSV (dataset.lists): no split")
    return result


@register_builder("caer")
def build_caer(root: Path, lists: Path | None = None) -> BuildResult:
    result = folder_result(Path(root), CAER_CLASSES)
    if result.manifest.records and not any(r.split for r in result.manifest.records):
        raise ManifestError(f"{root}: CAER expects <Class>/ folders in train/, validation/ and test/")
    return ignored_lists(result, "caer", lists)
