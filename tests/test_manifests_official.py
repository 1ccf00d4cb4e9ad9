"""The official VE-8 and Ekman-6 split lists shipped in manifests/, and the manifests made from them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pipeline.manifests.format import classes_path, read_manifest
from pipeline.manifests.official import convert_official, main
from pipeline.manifests.ucf import EK6_CLASSES, OFFICIAL_LISTS, VE8_CLASSES, read_lists

MANIFESTS = OFFICIAL_LISTS.parent
SHARED_SPLITS = Path("/work/shared/data/splits")

# Entries per split, counted from the files (Ekman-6's train list ends without a newline: 819 entries).
COUNTS = {"ve8": (VE8_CLASSES, 732, 367), "ek6": (EK6_CLASSES, 819, 818)}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_official_lists_parse_with_their_counts(name: str) -> None:
    classes, n_train, n_test = COUNTS[name]
    got_classes, entries = read_lists(OFFICIAL_LISTS / name)
    assert got_classes == classes
    assert Counter(e.split for e in entries) == {"train": n_train, "test": n_test}
    assert {e.label for e in entries} == set(classes)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_shipped_manifest_matches_the_lists(name: str) -> None:
    classes, n_train, n_test = COUNTS[name]
    manifest = read_manifest(MANIFESTS / f"{name}_split01.csv")
    assert manifest.classes == classes
    assert (len(manifest.subset("train")), len(manifest.subset("test"))) == (n_train, n_test)
    assert all(r.path == f"{r.video_id}.mp4" and r.path.split("/")[0] == r.label for r in manifest.records)


# Per-class (train, test) counts, counted once by hand from the lists. VE-8's split 01 is not stratified
# per class (Anger 74/27, Trust 61/39), which is why ve8_runs draws its own stratified runs.
PER_CLASS = {
    "ve8": {"Anger": (74, 27), "Anticipation": (64, 36), "Disgust": (76, 39), "Fear": (113, 54),
            "Joy": (114, 66), "Sadness": (64, 36), "Surprise": (166, 70), "Trust": (61, 39)},
    "ek6": {"anger": (113, 112), "disgust": (119, 120), "fear": (144, 143), "joy": (152, 153),
            "sadness": (111, 110), "surprise": (180, 180)},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PER_CLASS))
def test_shipped_manifest_per_class_counts(name: str) -> None:
    manifest = read_manifest(MANIFESTS / f"{name}_split01.csv")
    train = Counter(r.label for r in manifest.subset("train"))
    test = Counter(r.label for r in manifest.subset("test"))
    assert {c: (train[c], test[c]) for c in manifest.classes} == PER_CLASS[name]


def test_regenerating_gives_the_shipped_files(tmp_path: Path) -> None:
    written = convert_official(OFFICIAL_LISTS, tmp_path)
    assert [p.name for p in written] == ["ve8_split01.csv", "ek6_split01.csv"]
    for path in written:
        assert path.read_bytes() == (MANIFESTS / path.name).read_bytes()
        assert classes_path(path).read_bytes() == classes_path(MANIFESTS / path.name).read_bytes()


def test_cli_writes_both_manifests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--out", str(tmp_path)])
    assert "ek6_split01.csv" in capsys.readouterr().out
    assert len(read_manifest(tmp_path / "ek6_split01.csv")) == 1637


@pytest.mark.skipif(not SHARED_SPLITS.is_dir(), reason="the shared copy of the official lists is not here")
@pytest.mark.parametrize("rel", ["ve8/classInd.txt", "ve8/trainlist01.txt", "ek6/testlist01.txt"])
def test_shipped_lists_are_the_official_files(rel: str) -> None:
    assert (OFFICIAL_LISTS / rel).read_bytes() == (SHARED_SPLITS / rel).read_bytes()
