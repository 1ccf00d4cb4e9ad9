"""Manifest builders on synthetic dataset trees (empty files stand in for videos)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.manifests.folders import CAER_CLASSES, HEIV_CLASSES
from pipeline.manifests.format import read_manifest, write_manifest
from pipeline.manifests.registry import (
    ManifestError,
    get_builder,
    list_builders,
    register_builder,
    run_builder,
)
from pipeline.manifests.ucf import VE8_CLASSES


def touch(root: Path, *rels: str) -> Path:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def ids(result) -> dict[str, tuple[str, str, str]]:
    return {r.video_id: (r.path, r.label, r.split) for r in result.manifest.records}


# --- one small valid tree per builder: the registry-driven test covers every registered builder ---


def ucf_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    write(tmp / "lists/classInd.txt", "1 Anger\n2 Joy")
    write(tmp / "lists/trainlist01.txt", "Anger/a 1\nJoy/b 2")
    write(tmp / "lists/testlist01.txt", "Joy/c")
    return touch(tmp / "v", "Anger/a.mp4", "Joy/b.avi", "Joy/c.mkv"), tmp / "lists", 3


def ve8_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    videos = ("Anger/ExtremelyAngryCustomeratMcDonalds-Veryfunny.mp4", "Trust/8931828341_360p.webm")
    return touch(tmp / "v", *videos), None, 2


def ek6_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    return touch(tmp / "v", "anger/1000.mp4", "surprise/598.mp4"), None, 2


def heiv_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    return touch(tmp / "v", "train/joy/1.mp4", "test/fear/2.mp4"), None, 2


def caer_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    return touch(tmp / "v", "train/Happy/0001.avi", "validation/Sad/0001.avi", "test/Sad/0001.avi"), None, 3


def mediaeval_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    write(tmp / "ann.txt", "name\tvalenceClass\tarousalClass\tset\nACCEDE00000.mp4\t1\t-1\ttrain")
    return touch(tmp / "v", "ACCEDE00000.mp4"), tmp / "ann.txt", 1


def folder_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    return touch(tmp / "v", "cats/1.mp4", "dogs/1.mp4"), None, 2


def csv_tree(tmp: Path) -> tuple[Path, Path | None, int]:
    write(tmp / "list.csv", "path,label,split\nx/1.mp4,pos,train\nx/2.mp4,neg,test")
    return touch(tmp / "v", "x/1.mp4", "x/2.mp4"), tmp / "list.csv", 2


TREES: dict[str, Callable[[Path], tuple[Path, Path | None, int]]] = {
    "ucf": ucf_tree,
    "ve8": ve8_tree,
    "ek6": ek6_tree,
    "heiv": heiv_tree,
    "caer": caer_tree,
    "mediaeval2015": mediaeval_tree,
    "folder": folder_tree,
    "csv": csv_tree,
}


def test_every_registered_builder_has_a_tree() -> None:
    assert list_builders() == sorted(TREES)


@pytest.mark.parametrize("name", sorted(TREES))
def test_builder_makes_a_manifest_that_round_trips(name: str, tmp_path: Path) -> None:
    root, lists, expected = TREES[name](tmp_path)
    result = run_builder(name, root, lists)
    assert len(result.manifest) == expected
    assert all(r.resolve(root).is_file() for r in result.manifest.records)
    assert not result.unlisted
    write_manifest(result.manifest, tmp_path / "out/m.csv")
    back = read_manifest(tmp_path / "out/m.csv")
    assert back.records == result.manifest.records and back.classes == result.manifest.classes


# --- registry ---


def test_registering_a_second_builder_under_a_taken_name_raises() -> None:
    def build_other(root: Path, lists: Path | None = None):
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="already registered"):
        register_builder("ucf")(build_other)
    assert get_builder("ucf").__name__ == "build_ucf"


def test_registering_the_same_builder_again_is_harmless() -> None:
    builder = get_builder("folder")
    assert register_builder("folder")(builder) is builder


def test_unknown_builder_names_the_choices() -> None:
    with pytest.raises(ManifestError, match="unknown dataset builder 'nope'.*caer, csv"):
        get_builder("nope")


def test_unknown_option_is_a_clear_error(tmp_path: Path) -> None:
    root, lists, _ = ucf_tree(tmp_path)
    with pytest.raises(ManifestError, match="builder 'ucf': bad options \\['fold'\\]"):
        run_builder("ucf", root, lists, {"fold": 3})


# --- ucf ---


def test_ucf_same_stem_non_ascii_spaces_missing_and_unlisted(tmp_path: Path) -> None:
    write(tmp_path / "l/classInd.txt", "1 Anger\n2 Joy")
    write(tmp_path / "l/trainlist01.txt", "Anger/clip 01 1\nJoy/clip 01 2\nJoy/ünï code 2")
    write(tmp_path / "l/testlist01.txt", "Anger/gone\nJoy/café\n")
    root = touch(tmp_path / "v", "Anger/clip 01.mp4", "Joy/clip 01.avi", "Joy/ünï code.webm", "Joy/café.MOV")
    touch(root, "Joy/extra.mkv", "Anger/notes.txt", ".trash/Anger/x.mp4", "Joy/._café.mp4")
    result = run_builder("ucf", root, tmp_path / "l")
    assert ids(result) == {
        "Anger/clip 01": ("Anger/clip 01.mp4", "Anger", "train"),
        "Joy/clip 01": ("Joy/clip 01.avi", "Joy", "train"),
        "Joy/ünï code": ("Joy/ünï code.webm", "Joy", "train"),
        "Joy/café": ("Joy/café.MOV", "Joy", "test"),
    }
    assert result.missing == ["Anger/gone"]
    assert result.unlisted == ["Joy/extra.mkv"]


def test_ucf_lists_default_to_root_and_accept_crlf_and_bom(tmp_path: Path) -> None:
    root = touch(tmp_path, "Joy/a.mp4", "Sad/b.mp4")
    (root / "classInd.txt").write_text("\ufeff1 Joy\r\n2 Sad\r\n", encoding="utf-8")
    (root / "trainlist01.txt").write_text("Joy/a 1\r\nSad/b 2\r\n", encoding="utf-8")
    result = run_builder("ucf", root)
    assert result.manifest.classes == ["Joy", "Sad"]
    assert sorted(ids(result)) == ["Joy/a", "Sad/b"]


def test_ucf_stem_ending_in_a_number_without_index(tmp_path: Path) -> None:
    write(tmp_path / "l/classInd.txt", "1 Anger\n2 Joy")
    write(tmp_path / "l/testlist01.txt", "Joy/take 2")
    result = run_builder("ucf", touch(tmp_path / "v", "Joy/take 2.mp4"), tmp_path / "l")
    assert ids(result) == {"Joy/take 2": ("Joy/take 2.mp4", "Joy", "test")}


def test_ucf_split_id_and_val_list(tmp_path: Path) -> None:
    write(tmp_path / "l/trainlist02.txt", "B/x")
    write(tmp_path / "l/vallist02.txt", "A/y")
    write(tmp_path / "l/testlist01.txt", "A/x")
    root = touch(tmp_path / "v", "A/x.mp4", "A/y.mp4", "B/x.mp4")
    result = run_builder("ucf", root, tmp_path / "l", {"split_id": "02"})
    assert ids(result) == {"B/x": ("B/x.mp4", "B", "train"), "A/y": ("A/y.mp4", "A", "val")}
    assert result.manifest.classes == ["A", "B"]
    assert result.unlisted == ["A/x.mp4"]


def test_ucf_prefers_mp4_and_warns_when_a_stem_has_two_files(tmp_path: Path) -> None:
    write(tmp_path / "l/trainlist01.txt", "A/x")
    result = run_builder("ucf", touch(tmp_path / "v", "A/x.avi", "A/x.mp4"), tmp_path / "l")
    assert ids(result) == {"A/x": ("A/x.mp4", "A", "train")}
    assert result.warnings == ["A/x: several files ['A/x.mp4', 'A/x.avi']; using A/x.mp4"]


@pytest.mark.parametrize(
    ("train", "message"),
    [
        ("A/x 1\nB/y 1", r"trainlist01.txt:2: class index 1 does not name class 'B'"),
        ("A/x 1\nC/y", r"trainlist01.txt:2: class 'C' of 'C/y' is not in \['A', 'B'\]"),
        ("A/x 1\n\nA/x 1", r"trainlist01.txt:3: 'A/x' is already listed at .*trainlist01.txt:1"),
        ("just_a_name", r"trainlist01.txt:1: expected '<Class>/<stem>\[ <index>\]'"),
    ],
)
def test_ucf_bad_lists_raise_naming_file_and_line(tmp_path: Path, train: str, message: str) -> None:
    write(tmp_path / "l/classInd.txt", "1 A\n2 B")
    write(tmp_path / "l/trainlist01.txt", train)
    with pytest.raises(ManifestError, match=message):
        run_builder("ucf", touch(tmp_path / "v", "A/x.mp4"), tmp_path / "l")


def test_ucf_video_in_train_and_test_raises(tmp_path: Path) -> None:
    write(tmp_path / "l/trainlist01.txt", "A/x")
    write(tmp_path / "l/testlist01.txt", "A/x")
    with pytest.raises(
        ManifestError, match="testlist01.txt:1: 'A/x' is already listed at .*trainlist01.txt:1"
    ):
        run_builder("ucf", touch(tmp_path / "v", "A/x.mp4"), tmp_path / "l")


def test_ucf_without_lists_or_root_raises(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no trainlist01.txt or testlist01.txt"):
        run_builder("ucf", touch(tmp_path / "v", "A/x.mp4"))
    write(tmp_path / "l/trainlist01.txt", "A/x")
    with pytest.raises(ManifestError, match="is not a folder"):
        run_builder("ucf", tmp_path / "absent", tmp_path / "l")


def test_ve8_defaults_to_the_official_lists(tmp_path: Path) -> None:
    root, _, _ = ve8_tree(tmp_path)
    touch(root, "Joy/not_in_any_list.mp4")
    result = run_builder("ve8", root)
    assert result.manifest.classes == VE8_CLASSES
    assert ids(result)["Trust/8931828341_360p"] == ("Trust/8931828341_360p.webm", "Trust", "train")
    assert len(result.missing) == 1099 - 2 and "Fear/7978035375_34812a1fa0_700" in result.missing
    assert result.unlisted == ["Joy/not_in_any_list.mp4"]


def test_ek6_rejects_lists_with_other_classes(tmp_path: Path) -> None:
    write(tmp_path / "l/classInd.txt", "1 anger\n2 happy")
    write(tmp_path / "l/trainlist01.txt", "anger/1 1")
    with pytest.raises(ManifestError, match="classInd.txt: classes \\['anger', 'happy'\\] differ"):
        run_builder("ek6", touch(tmp_path / "v", "anger/1.mp4"), tmp_path / "l")


# --- folder, heiv, caer ---


def test_folder_flat_ids_stay_unique(tmp_path: Path) -> None:
    root = touch(
        tmp_path, "Joy/x.mp4", "Sad/x.mp4", "Sad/y.mp4", "Sad/y.avi", "Joy/sub dir/ä b.m4v", "loose.mp4"
    )
    result = run_builder("folder", root)
    assert ids(result) == {
        "Joy/x": ("Joy/x.mp4", "Joy", ""),
        "Sad/x": ("Sad/x.mp4", "Sad", ""),
        "Sad/y.mp4": ("Sad/y.mp4", "Sad", ""),
        "Sad/y.avi": ("Sad/y.avi", "Sad", ""),
        "Joy/sub dir/ä b": ("Joy/sub dir/ä b.m4v", "Joy", ""),
    }
    assert result.manifest.classes == ["Joy", "Sad"]
    assert result.unlisted == ["loose.mp4"]


def test_folder_split_folders(tmp_path: Path) -> None:
    root = touch(tmp_path, "train/B/1.mp4", "Validation/A/1.mp4", "test/A/1.mp4", "extras/A/2.mp4")
    result = run_builder("folder", root)
    assert {(r.video_id, r.split) for r in result.manifest.records} == {
        ("train/B/1", "train"),
        ("Validation/A/1", "val"),
        ("test/A/1", "test"),
    }
    assert result.unlisted == ["extras/A/2.mp4"]


def test_folder_with_fixed_classes_names_the_stray_file(tmp_path: Path) -> None:
    root = touch(tmp_path, "A/1.mp4", "Z/odd one.mp4")
    with pytest.raises(
        ManifestError, match=r"Z/odd one.mp4: label 'Z' is not in the class list \['A', 'B'\]"
    ):
        run_builder("folder", root, None, {"classes": ["A", "B"]})


def test_heiv_train_test_folders(tmp_path: Path) -> None:
    root = touch(tmp_path, *(f"{s}/{c}/1.mp4" for s in ("train", "test") for c in HEIV_CLASSES))
    result = run_builder("heiv", root)
    assert result.manifest.classes == HEIV_CLASSES
    assert len(result.manifest.subset("train")) == len(result.manifest.subset("test")) == 7


def test_heiv_flat_folders_with_split_csv(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", "joy/1.mp4", "joy/2.mp4", "fear/1.mp4", "fear/3.mp4")
    write(tmp_path / "split.csv", "path,split\njoy/1.mp4,train\nfear/1,test\njoy/9.mp4,test\njoy/2,Train")
    result = run_builder("heiv", root, tmp_path / "split.csv")
    assert {(r.video_id, r.split) for r in result.manifest.records} == {
        ("joy/1", "train"),
        ("joy/2", "train"),
        ("fear/1", "test"),
    }
    assert result.missing == ["joy/9.mp4"]
    assert result.unlisted == ["fear/3.mp4"]


def test_heiv_flat_without_csv_leaves_split_empty_and_says_so(tmp_path: Path) -> None:
    result = run_builder("heiv", touch(tmp_path, "joy/1.mp4"))
    assert [r.split for r in result.manifest.records] == [""]
    assert "no split" in result.warnings[0]


def test_heiv_unknown_class_folder_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="train/happy/1.mp4: label 'happy'"):
        run_builder("heiv", touch(tmp_path, "train/joy/1.mp4", "train/happy/1.mp4"))


def test_heiv_split_csv_with_bad_split_names_the_line(tmp_path: Path) -> None:
    write(tmp_path / "split.csv", "path,split\njoy/1.mp4,train\njoy/2.mp4,dev")
    with pytest.raises(ManifestError, match="split.csv:3: split 'dev' is not one of"):
        run_builder("heiv", touch(tmp_path / "v", "joy/1.mp4"), tmp_path / "split.csv")


def test_caer_layout(tmp_path: Path) -> None:
    rels = [f"{s}/{c}/0001.avi" for s in ("train", "validation", "test") for c in CAER_CLASSES]
    result = run_builder("caer", touch(tmp_path, *rels))
    assert result.manifest.classes == CAER_CLASSES
    assert len(result.manifest) == 21 and len(result.manifest.subset("val")) == 7
    assert ids(result)["validation/Happy/0001"] == ("validation/Happy/0001.avi", "Happy", "val")


def test_caer_without_split_folders_raises(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="CAER expects"):
        run_builder("caer", touch(tmp_path, "Happy/0001.avi"))


# --- mediaeval2015 ---

ANNOTATION = "id\tname\tvalenceClass\tarousalClass\tset\tfilm\n0\tACCEDE00000.mp4\t1\t-1\tdevset\tFilm A\n"


def test_mediaeval_labels_sets_and_extras(tmp_path: Path) -> None:
    text = ANNOTATION + "1\tACCEDE00001\t-1\t0\ttestset\tFilm B\n2\tACCEDE00002\t0\t1\ttest\t\n"
    write(tmp_path / "ann/ACCEDEaffect.txt", text)
    write(tmp_path / "ann/README.txt", "notes")
    root = touch(tmp_path / "v", "ACCEDE00000.mp4", "ACCEDE00001.mp4", "ACCEDE99999.mp4")
    result = run_builder("mediaeval2015", root, tmp_path / "ann")
    assert result.manifest.classes == ["calm", "neutral", "active"]
    records = result.manifest.by_id()
    assert records["ACCEDE00000"].label == "calm" and records["ACCEDE00000"].split == "train"
    assert records["ACCEDE00000"].extra == {"valence": "positive", "film": "Film A"}
    assert records["ACCEDE00001"].extra == {"valence": "negative", "film": "Film B"}
    assert (records["ACCEDE00001"].label, records["ACCEDE00001"].split) == ("neutral", "test")
    assert result.missing == ["ACCEDE00002"] and result.unlisted == ["ACCEDE99999.mp4"]


def test_mediaeval_valence_target_and_csv_files_side_by_side(tmp_path: Path) -> None:
    write(tmp_path / "ann/train.csv", "name,valenceClass,arousalClass,set\nACCEDE00000,1,-1,train")
    write(tmp_path / "ann/test.csv", "Name,ValenceClass,ArousalClass,Set\nACCEDE00001,0,1,test")
    root = touch(tmp_path / "v", "ACCEDE00000.mp4", "ACCEDE00001.mp4")
    result = run_builder("mediaeval2015", root, tmp_path / "ann", {"target": "valence"})
    assert ids(result) == {
        "ACCEDE00000": ("ACCEDE00000.mp4", "positive", "train"),
        "ACCEDE00001": ("ACCEDE00001.mp4", "neutral", "test"),
    }
    assert result.manifest.by_id()["ACCEDE00001"].extra == {"arousal": "active"}


@pytest.mark.parametrize(
    ("extra_row", "message"),
    [
        ("1\tACCEDE00001\t2\t0\ttest\t\n", r"ACCEDEaffect.txt:3: valenceClass '2' is not -1, 0 or 1"),
        ("1\tACCEDE00000\t0\t0\ttest\t\n", r"ACCEDEaffect.txt:3: clip 'ACCEDE00000' is already annotated"),
    ],
)
def test_mediaeval_bad_rows_name_file_and_line(tmp_path: Path, extra_row: str, message: str) -> None:
    write(tmp_path / "ACCEDEaffect.txt", ANNOTATION + extra_row)
    with pytest.raises(ManifestError, match=message):
        run_builder("mediaeval2015", touch(tmp_path / "v", "ACCEDE00000.mp4"), tmp_path / "ACCEDEaffect.txt")


def test_mediaeval_without_annotations_raises(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no annotation file"):
        run_builder("mediaeval2015", touch(tmp_path, "ACCEDE00000.mp4"))


# --- csv ---


def test_csv_relative_absolute_extras_missing_unlisted(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", "a/1.mp4", "b/é 2.avi", "b/3.mp4")
    outside = touch(tmp_path / "elsewhere", "4.mkv") / "4.mkv"
    rows = [f"{root / 'b/é 2.avi'},neg,test,f2", f"{outside},pos,validation,f3", "a/missing.mp4,zzz,train,f1"]
    write(tmp_path / "l.csv", "path,label,split,fold\na/1.mp4,pos,train,f1\n" + "\n".join(rows))
    result = run_builder("csv", root, tmp_path / "l.csv")
    assert ids(result) == {
        "a/1": ("a/1.mp4", "pos", "train"),
        "b/é 2": ("b/é 2.avi", "neg", "test"),
        str(outside.with_suffix("")).lstrip("/"): (str(outside), "pos", "val"),
    }
    assert result.manifest.by_id()["a/1"].extra == {"fold": "f1"}
    assert result.manifest.classes == ["neg", "pos", "zzz"]
    assert result.missing == ["a/missing.mp4"] and result.unlisted == ["b/3.mp4"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a/1.mp4,pos\n", r"l.csv: no rows under a header"),
        ("file,class\na/1.mp4,pos", r"l.csv: header lacks column\(s\) \['path', 'label'\]"),
        ("path,label,split\na/1.mp4,pos,holdout", r"l.csv:2: split 'holdout' is not one of"),
        ("path,label\na/1.mp4,pos\na/1.mp4,neg", r"l.csv:3: 'a/1.mp4' is already listed at .*l.csv:2"),
    ],
)
def test_csv_bad_files_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "l.csv", text)
    with pytest.raises(ManifestError, match=message):
        run_builder("csv", touch(tmp_path / "v", "a/1.mp4"), tmp_path / "l.csv")


def test_csv_label_outside_given_classes_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "l.csv", "path,label\na/1.mp4,pos\na/2.mp4,meh")
    root = touch(tmp_path / "v", "a/1.mp4", "a/2.mp4")
    with pytest.raises(ManifestError, match=r"a/2.mp4: label 'meh' is not in the class list"):
        run_builder("csv", root, tmp_path / "l.csv", {"classes": ["pos", "neg"]})


def test_csv_needs_lists(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="needs dataset.lists"):
        run_builder("csv", touch(tmp_path, "a/1.mp4"))


@pytest.mark.parametrize(
    "spelling", ["a\\1.mp4", "./a/1.mp4", "a/../a/1.mp4", "a//1.mp4", "a/./1.mp4"]
)
def test_csv_one_file_spelled_two_ways_is_a_duplicate(tmp_path: Path, spelling: str) -> None:
    write(tmp_path / "l.csv", f"path,label,split\na/1.mp4,pos,train\n{spelling},pos,test")
    with pytest.raises(ManifestError, match=r"l.csv:3: 'a/1.mp4' is already listed at .*l.csv:2"):
        run_builder("csv", touch(tmp_path / "v", "a/1.mp4"), tmp_path / "l.csv")


def test_csv_spellings_are_normalised_to_one_id(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", "a/1.mp4", "b/2.mp4", "c/3.mp4")
    write(tmp_path / "l.csv", "path,label\na\\1.mp4,pos\n./b/2.mp4,neg\nc/../c/3.mp4,neg")
    result = run_builder("csv", root, tmp_path / "l.csv")
    assert {r.video_id: r.path for r in result.manifest.records} == {
        "a/1": "a/1.mp4", "b/2": "b/2.mp4", "c/3": "c/3.mp4"}
    assert not result.unlisted and not result.missing


def test_csv_absolute_spelling_under_the_root_is_the_relative_one(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", "a/1.mp4")
    write(tmp_path / "l.csv", f"path,label\na/1.mp4,pos\n{root}/b/../a/1.mp4,pos")
    with pytest.raises(ManifestError, match=r"l.csv:3: 'a/1.mp4' is already listed at .*l.csv:2"):
        run_builder("csv", root, tmp_path / "l.csv")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../v2/a/1.mp4,pos", r"l.csv:3: path '../v2/a/1.mp4' leaves the dataset root"),
        ("a/../../1.mp4,pos", r"l.csv:3: path 'a/../../1.mp4' leaves the dataset root"),
        ("a/2.mp4,", r"l.csv:3: 'a/2.mp4' has an empty label"),
        ("a/2.mp4,  ", r"l.csv:3: 'a/2.mp4' has an empty label"),
        ('"a/2\n.mp4",pos', r"l.csv:4: path 'a/2\\n.mp4' holds a control character"),
        ('"a/2.mp4\n",pos', r"l.csv:4: path 'a/2.mp4\\n' holds a control character"),
        ("a/2\x07.mp4,pos", r"l.csv:3: path 'a/2\\x07.mp4' holds a control character"),
        ('a/2.mp4,"p\nos"', r"l.csv:4: label 'p\\nos' holds a control character"),
    ],
)
def test_csv_bad_rows_name_the_file_and_the_line(tmp_path: Path, row: str, message: str) -> None:
    (tmp_path / "l.csv").write_bytes(f"path,label\na/1.mp4,pos\n{row}\n".encode())
    root = touch(tmp_path / "v", "a/1.mp4", "a/2.mp4")
    touch(tmp_path / "v2", "a/1.mp4")
    with pytest.raises(ManifestError, match=message):
        run_builder("csv", root, tmp_path / "l.csv")


def test_csv_crlf_file_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "l.csv").write_bytes(b"path,label\r\na/1.mp4,pos\r\na/2.mp4,neg\r\n")
    result = run_builder("csv", touch(tmp_path / "v", "a/1.mp4", "a/2.mp4"), tmp_path / "l.csv")
    assert sorted(r.path for r in result.manifest.records) == ["a/1.mp4", "a/2.mp4"]


def test_heiv_split_csv_spellings_are_one_file(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", "joy/1.mp4", "anger/2.mp4")
    write(tmp_path / "s.csv", "path,split\njoy\\1.mp4,train\n./anger/2,test\n")
    result = run_builder("heiv", root, tmp_path / "s.csv")
    assert {r.video_id: r.split for r in result.manifest.records} == {"joy/1": "train", "anger/2": "test"}
    write(tmp_path / "s.csv", "path,split\njoy/1.mp4,train\njoy/./1.mp4,test\n")
    with pytest.raises(ManifestError, match=r"s.csv:3: 'joy/1.mp4' is already listed at .*s.csv:2"):
        run_builder("heiv", root, tmp_path / "s.csv")


def test_ucf_one_video_spelled_two_ways_is_a_duplicate(tmp_path: Path) -> None:
    write(tmp_path / "l/trainlist01.txt", "anger/a\njoy/b")
    write(tmp_path / "l/testlist01.txt", "anger/./a")
    message = r"testlist01.txt:1: 'anger/a' is already listed at .*trainlist01"
    with pytest.raises(ManifestError, match=message):
        run_builder("ucf", touch(tmp_path / "v", "anger/a.mp4", "joy/b.mp4"), tmp_path / "l")


@pytest.mark.parametrize(("builder", "files", "bad"), [
    # a list saved by a spreadsheet in Latin-1: a UnicodeDecodeError traceback from the manifest stage
    ("csv", {"list.csv": "path,label\njoy/a.mp4,joy\njoy/caf\xe9.mp4,joy\n"}, "list.csv:3"),
    ("ucf", {"classInd.txt": "1 joy\n2 sadn\xe9ss\n", "trainlist01.txt": "joy/a.mp4 1\n",
             "testlist01.txt": "joy/a.mp4\n"}, "classInd.txt:2"),
])
def test_a_list_not_in_utf8_names_the_file_and_line(tmp_path: Path, builder: str, files: dict[str, str],
                                                    bad: str) -> None:
    root = touch(tmp_path / "videos", "joy/a.mp4")
    for name, text in files.items():
        (tmp_path / "lists" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "lists" / name).write_bytes(text.encode("latin-1"))
    lists = tmp_path / "lists" / ("list.csv" if builder == "csv" else "")
    with pytest.raises(ManifestError, match=rf"{bad}: byte 0xe9 is not UTF-8: save the list as UTF-8"):
        run_builder(builder, root, lists)
