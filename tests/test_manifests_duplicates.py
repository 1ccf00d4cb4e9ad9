"""Videos holding the same bytes are said by the manifest stage, never silently trained on: in two splits
(test leaks into training), under two labels (a label conflict), or twice in one split and label (counted).
Real clips made with ffmpeg, real copies, symbolic and hard links; the real stage's main."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import yaml

from pipeline.file_memo import FileMemo
from pipeline.manifests import duplicates
from pipeline.manifests.duplicates import (
    ACROSS_LABELS,
    ACROSS_SPLITS,
    WITHIN_SPLIT,
    DuplicateGroup,
    Duplicates,
    find_duplicates,
)
from pipeline.manifests.fingerprint import source_fingerprint
from pipeline.manifests.format import VideoRecord, read_manifest
from pipeline.manifests.protocols import DUPLICATE_OF
from stages import manifest as manifest_stage
from tests.corpus import lavfi_video
from tests.test_manifests_stage import REPO, touch


def stage(tmp: Path, dataset: dict, capsys: pytest.CaptureFixture[str]) -> str:
    """The manifest stage's main, in process (a subprocess costs CI seconds), on `dataset` with the shipped
    params and no head; what it printed. It must succeed: duplicates are said, never fatal."""
    params = tmp / "params.yaml"
    shipped = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params.write_text(yaml.safe_dump({**shipped, "dataset": {"name": "t", **dataset}, "heads": {}}),
                      encoding="utf-8")
    assert manifest_stage.main(["--params", str(params), "--out", str(tmp / "out")]) == 0
    return capsys.readouterr().out


def same_ends_other_middle(a: Path, b: Path) -> None:
    """Two files of one size whose first and last 64 KiB agree and whose middles differ: one fingerprint,
    other bytes."""
    end = os.urandom(1 << 16)
    a.write_bytes(end + b"\x00" * 1000 + end)
    b.write_bytes(end + b"\x01" * 1000 + end)


def clips(root: Path) -> None:
    made = (("anger/c1.mp4", "testsrc"), ("anger/c2.mp4", "smptebars"), ("joy/c3.mp4", "rgbtestsrc"),
            ("joy/d.mp4", "testsrc2"))
    for rel, pattern in made:
        lavfi_video(root / rel, seconds=0.2, audio=False, pattern=pattern)


def test_copies_across_splits_and_labels_are_named_and_a_middle_that_differs_is_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "videos"
    clips(root)
    shutil.copyfile(root / "anger/c1.mp4", root / "anger/c1_again.mp4")     # train and test: a leak
    os.link(root / "anger/c1.mp4", root / "anger/c1_hard.mp4")              # a hard link, in val
    shutil.copyfile(root / "anger/c2.mp4", root / "joy/c2.mp4")             # anger and joy: a conflict
    shutil.copyfile(root / "joy/c3.mp4", root / "joy/c3_dl.mp4")            # twice in train, joy
    (root / "joy/c3_link.mp4").symlink_to(root / "joy/c3.mp4")              # and a link to it
    same_ends_other_middle(root / "anger/big1.mp4", root / "joy/big2.mp4")
    assert source_fingerprint(root / "anger/big1.mp4") == source_fingerprint(root / "joy/big2.mp4")
    rows = [("anger/c1.mp4", "anger", "train"), ("anger/c1_again.mp4", "anger", "test"),
            ("anger/c1_hard.mp4", "anger", "val"), ("anger/c2.mp4", "anger", "train"),
            ("joy/c2.mp4", "joy", "train"), ("joy/c3.mp4", "joy", "train"), ("joy/c3_dl.mp4", "joy", "train"),
            ("joy/c3_link.mp4", "joy", "train"), ("anger/big1.mp4", "anger", "train"),
            ("joy/big2.mp4", "joy", "test"), ("joy/d.mp4", "joy", "test")]
    (tmp_path / "list.csv").write_text("path,label,split\n" + "".join(f"{p},{c},{s}\n" for p, c, s in rows),
                                       encoding="utf-8")
    out = stage(tmp_path, {"builder": "csv", "root": str(root), "lists": str(tmp_path / "list.csv")}, capsys)
    report = json.loads((tmp_path / "out/manifest_report.json").read_text(encoding="utf-8"))["duplicates"]
    assert {k: report[k] for k in ("groups", "across_splits", "across_labels", "within_split")} == \
        {"groups": 3, "across_splits": 1, "across_labels": 1, "within_split": 1}
    members = [[(m["path"], m["label"], m["split"]) for m in g["members"]] for g in report["list"]]
    assert members == [rows[0:3], rows[3:5], rows[5:8]]
    assert [g["problems"] for g in report["list"]] == [["across_splits"], ["across_labels"], ["within_split"]]
    assert report["list"][0]["members"][1]["video_id"] == "anger/c1_again"
    assert "big1" not in json.dumps(report)
    assert ("test leaks into training: anger/c1.mp4 (train, anger) = anger/c1_again.mp4 (test, anger) = "
            "anger/c1_hard.mp4 (val, anger)") in out
    assert "label conflict (one clip, anger and joy): anger/c2.mp4 (train, anger) = joy/c2.mp4 (train, joy)" \
        in out
    assert "same bytes twice, within one split and label: 2 extra copies in 1 group(s)" in out
    assert "big1" not in out.split("warning:", 1)[1]


def test_a_dataset_without_duplicates_reports_none_and_reads_no_file_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "videos"
    clips(root)
    touch(root, "anger/empty1.mp4", "joy/empty2.mp4")     # empty: no video, the same (no) bytes, not said
    said = stage(tmp_path, {"builder": "folder", "root": str(root), "lists": None}, capsys)
    report = json.loads((tmp_path / "out/manifest_report.json").read_text(encoding="utf-8"))
    assert report["videos"] == 6
    assert report["duplicates"] == {"groups": 0, "across_splits": 0, "across_labels": 0, "within_split": 0,
                                    "list": []}
    assert "manifest: 6 videos" in said and "same bytes" not in said
    # in process, the full hash counted: none for distinct fingerprints, one per file behind two names
    read: list[Path] = []
    real = duplicates.sha256_of
    monkeypatch.setattr(duplicates, "sha256_of", lambda p: read.append(p) or real(p))
    paths = ("anger/c1.mp4", "anger/c2.mp4", "joy/d.mp4")
    records = [VideoRecord(p, p, p.split("/")[0], "train") for p in paths]
    inventory = [(r.path, (root / r.path).stat().st_size, source_fingerprint(root / r.path)) for r in records]
    assert find_duplicates(records, root, inventory) == [] and read == []
    (root / "anger/c1_link.mp4").symlink_to(root / "anger/c1.mp4")
    records.append(VideoRecord("anger/c1_link", "anger/c1_link.mp4", "anger", "test"))
    inventory.append((records[-1].path, inventory[0][1], inventory[0][2]))
    groups = find_duplicates(records, root, inventory)
    assert [[m.path for m in g.members] for g in groups] == [["anger/c1.mp4", "anger/c1_link.mp4"]]
    assert len(read) == 1


def test_folds_make_a_copy_a_leak_random_protocols_keep_copies_together_and_long_lists_are_cut(
        tmp_path: Path) -> None:
    root = tmp_path / "videos"
    pairs = []
    for i in range(3):
        (root / "joy").mkdir(parents=True, exist_ok=True)
        (root / f"joy/{i}.mp4").write_bytes(bytes([i]) * 100)
        shutil.copyfile(root / f"joy/{i}.mp4", root / f"joy/{i}b.mp4")
        pairs += [VideoRecord(f"joy/{i}", f"joy/{i}.mp4", "joy", "train", {"fold": "1"}),
                  VideoRecord(f"joy/{i}b", f"joy/{i}b.mp4", "joy" if i else "anger", "train",
                              {"fold": "1" if i else "2"})]
    inventory = [(r.path, 100, source_fingerprint(root / r.path)) for r in pairs]
    fixed = find_duplicates(pairs, root, inventory)
    assert [g.problems for g in fixed] == [(ACROSS_SPLITS, ACROSS_LABELS), (WITHIN_SPLIT,), (WITHIN_SPLIT,)]
    assert "folds 1 and 2 share a video: the test fold leaks into training: joy/0.mp4 (train, fold 1, joy)" \
        in "\n".join(Duplicates(tuple(fixed)).lines())
    # every head draws at random: the split column is unused and the draws keep copies together
    drawn = find_duplicates(pairs, root, inventory, random_split=True)
    assert [g.problems for g in drawn] == [(ACROSS_LABELS,), (WITHIN_SPLIT,), (WITHIN_SPLIT,)]
    lines = Duplicates(tuple(drawn), "ve8_runs").lines()
    assert lines[1].startswith("  label conflict (one clip, anger and joy): joy/0.mp4"), lines
    assert lines[2].startswith("same bytes twice, kept on one side of every split train.protocol ve8_runs "
                               "draws: 2 extra copies in 2 group(s)"), lines
    many = [DuplicateGroup(g.sha256, g.size, g.members, (ACROSS_SPLITS,)) for g in fixed]
    lines = Duplicates(tuple(many)).lines(limit=2)
    assert lines[0].startswith("warning: 3 group(s)") and len(lines) == 4
    assert lines[3] == "  ... and 1 more, see duplicates in manifest_report.json"


def test_full_hashes_are_kept_for_unchanged_files_and_read_again_when_a_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest stage runs on every `dvc repro`: an unchanged duplicate is not read in full again, and
    a rewritten one is, even with its size, ends and modification time kept (its ctime moved)."""
    read: list[Path] = []
    real = duplicates.sha256_of
    monkeypatch.setattr(duplicates, "sha256_of", lambda p: read.append(p) or real(p))
    root = tmp_path / "videos"
    (root / "joy").mkdir(parents=True)
    same_ends_other_middle(root / "joy/a.mp4", root / "joy/b.mp4")
    shutil.copyfile(root / "joy/a.mp4", root / "joy/b.mp4")
    records = [VideoRecord(f"joy/{n}", f"joy/{n}.mp4", "joy", s) for n, s in (("a", "train"), ("b", "test"))]
    inventory = [(r.path, (root / r.path).stat().st_size, source_fingerprint(root / r.path)) for r in records]

    fresh = FileMemo()          # files written just now are not kept: a coarse clock could miss a write
    assert len(find_duplicates(records, root, inventory, cache=fresh)) == 1 and fresh.new == {}
    first = FileMemo(settle_ns=0)
    assert len(find_duplicates(records, root, inventory, cache=first)) == 1 and len(first.new) == 2
    first.save(tmp_path / "hashes.json")
    read.clear()
    again = FileMemo.load(tmp_path / "hashes.json")
    again.settle_ns = 0
    assert len(find_duplicates(records, root, inventory, cache=again)) == 1 and read == []

    time.sleep(0.05)             # past a coarse file-system clock tick, so that the write moves the ctime
    stamp = (root / "joy/b.mp4").stat()
    same_ends_other_middle(tmp_path / "x", root / "joy/b.mp4")
    with open(root / "joy/b.mp4", "r+b") as f:       # b's ends back as a's: the same fingerprint
        f.write((root / "joy/a.mp4").read_bytes()[: 1 << 16])
        f.seek(-(1 << 16), 2)
        f.write((root / "joy/a.mp4").read_bytes()[-(1 << 16):])
    os.utime(root / "joy/b.mp4", ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert source_fingerprint(root / "joy/b.mp4") == inventory[1][2]
    later = FileMemo(again.new, settle_ns=0)
    assert find_duplicates(records, root, inventory, cache=later) == []
    assert read == [root / "joy/b.mp4"]
    assert FileMemo.load(tmp_path / "absent.json").old == {}


def test_a_dataset_without_a_split_gets_one_that_keeps_each_clips_copies_together(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The stage draws a 7:1:2 split for a dataset published without one: copies marked first
    (`duplicate_of`, naming the first copy) are drawn as one clip, whatever the seed."""
    root = tmp_path / "videos"
    for label in ("anger", "joy"):
        (root / label).mkdir(parents=True)
        for i in range(10):
            (root / f"{label}/{i}.mp4").write_bytes(os.urandom(2000))
    for copy in ("x", "y", "z"):
        shutil.copyfile(root / "anger/0.mp4", root / f"anger/0{copy}.mp4")
    os.link(root / "joy/3.mp4", root / "joy/3_link.mp4")
    groups = [["anger/0", "anger/0x", "anger/0y", "anger/0z"], ["joy/3", "joy/3_link"]]
    for seed in range(4):
        params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
        dataset = {"name": "t", "builder": "folder", "root": str(root), "lists": None}
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({**params, "seed": seed, "heads": {},
                                                              "dataset": dataset}), encoding="utf-8")
        out = tmp_path / "out"
        assert manifest_stage.main(["--params", str(tmp_path / "params.yaml"), "--out", str(out)]) == 0
        manifest = read_manifest(out / "manifest.csv")
        by_id = manifest.by_id()
        assert {r.split for r in manifest.records} == {"train", "val", "test"}
        for group in groups:
            assert len({by_id[v].split for v in group}) == 1, (seed, group)
            assert [by_id[v].extra[DUPLICATE_OF] for v in group] == [group[0]] * len(group)
        assert by_id["anger/1"].extra[DUPLICATE_OF] == ""
    assert "kept on one side" not in capsys.readouterr().out      # the shipped heads use the fixed protocol


def test_copies_that_disagree_on_a_heads_target_column_are_a_conflict(tmp_path: Path) -> None:
    """A head trained on another column (`train.target: valence`) learns that column: copies with two
    valences are a label conflict even under one label."""
    root = tmp_path / "videos"
    (root / "joy").mkdir(parents=True)
    (root / "joy/a.mp4").write_bytes(b"x" * 100)
    shutil.copyfile(root / "joy/a.mp4", root / "joy/b.mp4")
    pair = [VideoRecord("joy/a", "joy/a.mp4", "joy", "train", {"valence": "0.2"}),
            VideoRecord("joy/b", "joy/b.mp4", "joy", "train", {"valence": "0.8"})]
    inventory = [(r.path, 100, source_fingerprint(root / r.path)) for r in pair]
    [plain] = find_duplicates(pair, root, inventory)
    assert plain.problems == (WITHIN_SPLIT,)
    [group] = find_duplicates(pair, root, inventory, targets=("label", "valence"))
    assert group.problems == (ACROSS_LABELS,)
    found = Duplicates((group,))
    assert "  valence conflict (one clip, 0.2 and 0.8): joy/a.mp4 (train, joy)" in found.lines()[1]
    assert [m["valence"] for m in found.report()["list"][0]["members"]] == ["0.2", "0.8"]
