"""The one manifest format every stage reads.

A manifest is a CSV file with a header and one row per video:

    video_id,path,label,split[,extra columns...]

- ``video_id``: stable and unique within the manifest. Builders derive it from the path relative to the
  dataset root without the extension (``Anger/clip01``), so two classes holding files with the same stem
  stay distinct, and the id does not change when the dataset moves. When two files differ only by
  extension the extension is kept (``Anger/clip01.avi``).
- ``path``: relative to the dataset root (``dataset.root`` in params.yaml), or absolute.
- ``label``: the class name as the dataset spells it (``Anger`` for VE-8, ``anger`` for Ekman-6);
  for MediaEval 2015 the arousal level, with ``valence`` as an extra column.
- ``split``: ``train``, ``val``, ``test`` or empty (assigned later by a protocol helper).
- extra columns (``fold``, ``film``, ``valence``...) are kept as strings in ``VideoRecord.extra``.

The class list is stored beside the manifest, one class per line in index order, in
``<manifest stem>.classes.txt``, so that label indices never depend on which videos happen to be listed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

CORE_COLUMNS = ("video_id", "path", "label", "split")
SPLITS = ("train", "val", "test", "")


@dataclass(frozen=True)
class VideoRecord:
    video_id: str
    path: str
    label: str
    split: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def resolve(self, root: str | Path) -> Path:
        """Absolute path of the video file, given the dataset root."""
        p = Path(self.path)
        return p if p.is_absolute() else Path(root) / p


@dataclass
class Manifest:
    records: list[VideoRecord]
    classes: list[str]

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for r in self.records:
            if r.video_id in seen:
                raise ValueError(f"duplicate video_id {r.video_id!r} in manifest (path {r.path})")
            seen.add(r.video_id)
            if r.split not in SPLITS:
                raise ValueError(f"video {r.video_id!r}: split {r.split!r} is not one of {SPLITS}")
            if r.label and r.label not in self.classes:
                raise ValueError(f"video {r.video_id!r} ({r.path}): label {r.label!r} is not in the "
                                 f"class list {self.classes}")

    def __len__(self) -> int:
        return len(self.records)

    def label_index(self, label: str) -> int:
        return self.classes.index(label)

    def by_id(self) -> dict[str, VideoRecord]:
        return {r.video_id: r for r in self.records}

    def subset(self, split: str) -> list[VideoRecord]:
        return [r for r in self.records if r.split == split]


def classes_path(manifest_path: str | Path) -> Path:
    p = Path(manifest_path)
    return p.with_name(p.stem + ".classes.txt")


def write_manifest(manifest: Manifest, path: str | Path) -> None:
    """Write the CSV and its class list (each written to a temporary file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extras = sorted({k for r in manifest.records for k in r.extra})
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([*CORE_COLUMNS, *extras])
        for r in manifest.records:
            w.writerow([r.video_id, r.path, r.label, r.split, *(r.extra.get(k, "") for k in extras)])
    tmp.replace(path)
    ctmp = classes_path(path).with_suffix(".tmp")
    ctmp.write_text("".join(c + "\n" for c in manifest.classes), encoding="utf-8")
    ctmp.replace(classes_path(path))


def read_manifest(path: str | Path) -> Manifest:
    path = Path(path)
    classes = [c for c in classes_path(path).read_text(encoding="utf-8").splitlines() if c]
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CORE_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: manifest lacks columns {missing}")
        records = [
            VideoRecord(
                video_id=row["video_id"],
                path=row["path"],
                label=row["label"],
                split=row["split"],
                extra={k: v for k, v in row.items() if k not in CORE_COLUMNS},
            )
            for row in reader
        ]
    try:
        return Manifest(records=records, classes=classes)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc} (classes from {classes_path(path)})") from exc
