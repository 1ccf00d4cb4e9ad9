"""The manifest stage is the one place that looks at the dataset folder: entries named like videos that are
no readable file are rejected with the reason, the inventory holds what decode depends on, and the checks
that would otherwise fail after extraction (polarity for PCCE, a class with one video) fail in seconds.
Real FIFOs, symbolic links and folders; the real stage as a subprocess; one real `dvc repro manifest`."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.manifests.inventory import not_a_video_file, source_fingerprint
from pipeline.manifests.registry import run_builder
from tests.test_manifests_stage import REPO, run_stage, touch


def bad_entries(root: Path) -> None:
    os.mkfifo(root / "joy/fifo.mp4")
    (root / "anger/dangling.mp4").symlink_to(root / "nowhere.mp4")
    (root / "joy/folder.mp4").mkdir()


def folder_dataset(tmp: Path) -> Path:
    root = touch(tmp / "videos", *(f"{c}/{i}.mp4" for c in ("anger", "joy") for i in range(3)))
    bad_entries(root)
    return root


def test_not_a_video_file_names_each_kind(tmp_path: Path) -> None:
    root = folder_dataset(tmp_path)
    assert not_a_video_file(root / "joy/0.mp4") is None
    assert not_a_video_file(root / "joy/fifo.mp4") == "a FIFO (named pipe), not a video file"
    assert not_a_video_file(root / "anger/dangling.mp4") == "dangling symbolic link"
    assert not_a_video_file(root / "joy/folder.mp4") == "a directory, not a video file"
    locked = root / "anger/0.mp4"
    locked.chmod(0)
    try:
        if os.geteuid() == 0:  # root opens a chmod 000 file: it is readable, so it is kept
            assert not_a_video_file(locked) is None
        else:
            assert not_a_video_file(locked).startswith("unreadable (Permission denied")
    finally:
        locked.chmod(0o644)


def test_stage_rejects_what_is_no_video_file_and_writes_the_inventory(tmp_path: Path) -> None:
    root = folder_dataset(tmp_path)
    (root / "joy/0.mp4").write_bytes(b"12345")
    proc = run_stage(tmp_path, {"builder": "folder", "root": str(root), "lists": None},
                     "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out/manifest_report.json").read_text(encoding="utf-8"))
    assert report["videos"] == 6
    assert report["rejected"]["files"] == [
        {"path": "anger/dangling.mp4", "reason": "dangling symbolic link"},
        {"path": "joy/fifo.mp4", "reason": "a FIFO (named pipe), not a video file"},
        {"path": "joy/folder.mp4", "reason": "a directory, not a video file"},
    ]
    assert "joy/fifo.mp4: a FIFO" in proc.stdout
    with (tmp_path / "out/inventory.csv").open(encoding="utf-8", newline="") as f:
        rows = {r["path"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(f"{c}/{i}.mp4" for c in ("anger", "joy") for i in range(3))
    assert rows["joy/0.mp4"]["size"] == "5"
    assert rows["joy/0.mp4"]["fingerprint"] == source_fingerprint(root / "joy/0.mp4") != ""


def test_camcorder_and_dvd_files_are_videos_and_other_files_are_counted(tmp_path: Path) -> None:
    """AVCHD (.MTS, .m2ts), DVD (.vob) and broadcast (.ts) files are scanned like .mp4; every other file is
    counted by extension in the report and the summary, so a format the scan does not know is seen."""
    root = touch(tmp_path / "videos", "anger/00001.MTS", "anger/b.m2ts", "joy/VTS_01_1.vob", "joy/tv.ts",
                 "anger/notes.txt", "joy/labels.csv", "joy/README", "joy/._hidden.txt")
    proc = run_stage(tmp_path, {"builder": "folder", "root": str(root), "lists": None},
                     "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out/manifest_report.json").read_text(encoding="utf-8"))
    assert report["videos"] == 4
    assert report["other_files"] == {"": 1, ".csv": 1, ".txt": 1}
    said = "other files, not read (not a video file extension): (no extension) 1, .csv 1, .txt 1"
    assert said in proc.stdout


def test_the_inventory_of_a_copy_elsewhere_is_the_same_file(tmp_path: Path) -> None:
    """A colleague's copy, a clone or an experiment's checkout has other paths and modification times but
    the same bytes: the same inventory, so DVC re-runs no decode (docs/team.md)."""
    first = touch(tmp_path / "a/videos", *(f"{c}/{i}.mp4" for c in ("anger", "joy") for i in range(2)))
    second = tmp_path / "b" / "elsewhere"
    shutil.copytree(first, second)
    for video in second.rglob("*.mp4"):
        os.utime(video, ns=(1, 1))
    inventories = []
    for root, out in ((first, tmp_path / "out_a"), (second, tmp_path / "out_b")):
        proc = run_stage(tmp_path, {"builder": "folder", "root": str(root), "lists": None}, "--out", str(out))
        assert proc.returncode == 0, proc.stderr
        inventories.append((out / "inventory.csv").read_bytes())
    assert inventories[0] == inventories[1]
    (second / "joy/1.mp4").write_bytes(b"changed")
    proc = run_stage(tmp_path, {"builder": "folder", "root": str(second), "lists": None}, "--out",
                     str(tmp_path / "out_b"))
    assert (tmp_path / "out_b/inventory.csv").read_bytes() != inventories[0]


def test_a_listed_fifo_is_rejected_not_missing(tmp_path: Path) -> None:
    root = folder_dataset(tmp_path)
    (tmp_path / "l.csv").write_text("path,label\njoy/fifo.mp4,joy\njoy/0.mp4,joy\n", encoding="utf-8")
    result = run_builder("csv", root, tmp_path / "l.csv")
    assert result.rejected == [("joy/fifo.mp4", "a FIFO (named pipe), not a video file")]
    assert not result.missing and [r.path for r in result.manifest.records] == ["joy/0.mp4"]


def params_with(tmp: Path, dataset: dict, **sections: dict) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["dataset"] = {"name": "t", **dataset}
    for name, values in sections.items():
        params[name] = {**params[name], **values}
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


def stage(params: Path, out: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "stages.manifest", "--params", str(params), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


def test_classes_without_polarity_fail_the_stage_when_a_head_uses_pcce(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", *(f"{c}/{i}.mp4" for c in ("calm", "joy", "tense") for i in range(4)))
    dataset = {"builder": "folder", "root": str(root), "lists": None}
    proc = stage(params_with(tmp_path, dataset), tmp_path / "out")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "heads.vaanet trains with PCCE" in proc.stderr
    assert "classes ['calm', 'tense'] have none; add them to train.polarity" in proc.stderr
    assert not (tmp_path / "out/manifest.csv").exists()
    # fixed, with one more entry for a class the manifest does not have (a misspelling): said, not an error
    fixed = params_with(tmp_path, dataset, train={"polarity": {"calm": 0, "tense": -1, "joyy": 1}})
    proc = stage(fixed, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    assert "train.polarity names ['joyy'], which are no class of the manifest (classes: calm, joy, tense)" \
        in proc.stdout


def test_without_a_pcce_head_unknown_classes_are_fine(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", *(f"{c}/{i}.mp4" for c in ("calm", "tense") for i in range(4)))
    params = params_with(tmp_path, {"builder": "folder", "root": str(root), "lists": None})
    data = yaml.safe_load(params.read_text(encoding="utf-8"))
    data["heads"] = {k: v for k, v in data["heads"].items() if k in ("ten", "caan")}
    params.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    proc = stage(params, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr


def test_a_class_with_one_video_is_named(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", "anger/0.mp4", *(f"joy/{i}.mp4" for i in range(5)))
    dataset = {"builder": "folder", "root": str(root), "lists": None}
    proc = stage(params_with(tmp_path, dataset, train={"protocol": "ve8_runs"}), tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "classes ['anger'] have a single video; train.protocol ve8_runs needs at least two" in proc.stderr
    proc = stage(params_with(tmp_path, dataset), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    warnings = json.loads((tmp_path / "out/manifest_report.json").read_text(encoding="utf-8"))["warnings"]
    assert "classes ['anger'] have a single video: it is either trained on or tested, never both" in warnings
    assert "split not stratified: classes ['anger'] have a single video" in warnings


def dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_dvc_repro_manifest_with_lists_null_and_a_fifo_neither_hangs_nor_aborts(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, text=True,
                           capture_output=True, check=True).stdout.splitlines()
    for name in names:
        if (REPO / name).is_file() and not name.startswith(("tests/", "bench/", "docs/")):
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    shutil.rmtree(repo / "reports", ignore_errors=True)
    root = folder_dataset(repo / "data")
    params_with(repo, {"builder": "folder", "root": str(root.relative_to(repo)), "lists": None},
                demo={"classes": ["anger", "joy"], "clips_per_class": 3, "min_seconds": 1.0,
                      "max_seconds": 1.5})
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    done = dvc(["repro", "manifest"], repo)   # the timeout is the hang check: a hashed FIFO never returns
    assert done.returncode == 0, done.stdout + done.stderr
    assert "joy/fifo.mp4: a FIFO" in done.stdout
    assert (repo / "reports/t/inventory.csv").is_file()
    status = dvc(["status", "--json", "manifest"], repo)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout) == {"manifest": ["always changed"]}
    (root / "joy/0.mp4").write_bytes(b"changed")
    again = dvc(["repro", "manifest"], repo)
    assert again.returncode == 0, again.stderr
    assert "joy/0.mp4,7," in (repo / "reports/t/inventory.csv").read_text(encoding="utf-8")


def test_a_train_target_that_is_no_full_manifest_column_fails_the_stage(tmp_path: Path) -> None:
    # train@ read the target column only after the whole extraction: a misspelt one failed there
    root = touch(tmp_path / "v", *(f"{c}/{i}.mp4" for c in ("calm", "tense") for i in range(4)))
    rows = [f"{c}/{i}.mp4,{c},{'high' if i % 2 else ('' if (c, i) == ('tense', 2) else 'low')}"
            for c in ("calm", "tense") for i in range(4)]
    (tmp_path / "list.csv").write_text("path,label,arousal\n" + "\n".join(rows) + "\n", encoding="utf-8")
    dataset = {"builder": "csv", "root": str(root), "lists": str(tmp_path / "list.csv")}
    polarity = {"polarity": {"calm": 1, "tense": -1, "high": 1, "low": -1}}
    proc = stage(params_with(tmp_path, dataset, train={**polarity, "target": "arousl"}), tmp_path / "out")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert ("train.target 'arousl' is not a column of the manifest (columns besides label: arousal)"
            in proc.stderr)
    proc = stage(params_with(tmp_path, dataset, train={**polarity, "target": "arousal"}), tmp_path / "out")
    assert proc.returncode == 2 and "train.target 'arousal': some videos have no value" in proc.stderr
    assert not (tmp_path / "out/manifest.csv").exists()
    assert stage(params_with(tmp_path, dataset, train=polarity), tmp_path / "out").returncode == 0
