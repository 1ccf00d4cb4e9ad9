"""The `manifest` DVC stage, run as a subprocess on tmp trees with tmp params files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.manifests.format import read_manifest

REPO = Path(__file__).resolve().parents[1]


def touch(root: Path, *rels: str) -> Path:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    return root


def write_params(tmp: Path, dataset: dict, merge: dict | None = None) -> Path:
    """tmp/params.yaml: the shipped params on `dataset`, whose top-level sections `merge` replaces."""
    params = tmp / "params.yaml"
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())     # every stage checks all of it
    # no head entry: these datasets' classes have no polarity, which a PCCE head would need
    mine = {**shipped, "seed": 5, "dataset": {"name": "t", **dataset}, "heads": {}, **(merge or {})}
    params.write_text(yaml.safe_dump(mine), encoding="utf-8")
    return params


def run_stage(tmp: Path, dataset: dict, *extra: str, cwd: Path = REPO,
              merge: dict | None = None) -> subprocess.CompletedProcess[str]:
    """The stage, as a subprocess, on `dataset` (`write_params`)."""
    params = write_params(tmp, dataset, merge)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "stages.manifest", "--params", str(params), *extra]
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, encoding="utf-8", timeout=120
    )


def ucf_dataset(tmp: Path, n_missing: int = 1) -> dict:
    lists = tmp / "lists"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 anger\n2 joy", encoding="utf-8")
    gone = "".join(f"\nanger/gone {i:02d} 1" for i in range(n_missing))
    (lists / "trainlist01.txt").write_text("anger/a 1\njoy/a 2\njoy/ü 2" + gone, encoding="utf-8")
    (lists / "testlist01.txt").write_text("anger/b\njoy/c", encoding="utf-8")
    root = touch(
        tmp / "videos", "anger/a.mp4", "joy/a.mp4", "joy/ü.mp4", "anger/b.avi", "joy/c.mkv", "joy/new.mp4"
    )
    return {"builder": "ucf", "root": str(root), "lists": str(lists)}


def test_stage_writes_manifest_and_report(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, ucf_dataset(tmp_path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    manifest = read_manifest(tmp_path / "out/manifest.csv")
    assert manifest.classes == ["anger", "joy"] and len(manifest) == 5
    report = json.loads((tmp_path / "out/manifest_report.json").read_text(encoding="utf-8"))
    assert report["per_split_class"] == {"test": {"anger": 1, "joy": 1}, "train": {"anger": 1, "joy": 2}}
    assert report["missing"] == {"count": 1, "files": ["anger/gone 00"]}
    assert report["unlisted"] == {"count": 1, "files": ["joy/new.mp4"]}
    assert "anger/gone 00" in proc.stdout and "joy/new.mp4" in proc.stdout


def test_stage_names_the_first_20_missing_and_counts_the_rest(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, ucf_dataset(tmp_path, n_missing=25), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "listed but not on disk (left out): 25" in proc.stdout
    assert "anger/gone 19" in proc.stdout and "anger/gone 20" not in proc.stdout
    assert "... and 5 more" in proc.stdout


def test_stage_default_out_is_reports_name(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, ucf_dataset(tmp_path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(read_manifest(tmp_path / "reports/t/manifest.csv")) == 5


def test_stage_fails_on_an_empty_manifest(tmp_path: Path) -> None:
    dataset = ucf_dataset(tmp_path)
    dataset["root"] = str(touch(tmp_path / "empty", "anger/unrelated.mp4"))
    proc = run_stage(tmp_path, dataset, "--out", str(tmp_path / "out"))
    assert proc.returncode == 1
    assert "no video" in proc.stderr and not (tmp_path / "out/manifest.csv").exists()


def test_stage_fails_naming_the_line_of_an_unknown_class(tmp_path: Path) -> None:
    dataset = ucf_dataset(tmp_path)
    (tmp_path / "lists/testlist01.txt").write_text("anger/b\nfear/z", encoding="utf-8")
    proc = run_stage(tmp_path, dataset, "--out", str(tmp_path / "out"))
    assert proc.returncode != 0
    assert "testlist01.txt:2: class 'fear'" in proc.stderr and "Traceback" not in proc.stderr


def test_stage_fails_naming_files_whose_ids_collide(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", "a/x.mp4", "a/x.avi", "a/x.mp4.mkv", "b/y.mp4")
    proc = run_stage(tmp_path, {"builder": "folder", "root": str(root)}, "--out", str(tmp_path / "out"))
    assert proc.returncode != 0
    assert "video id 'a/x.mp4' is given to both a/x.mp4 and a/x.mp4.mkv" in proc.stderr


def test_stage_splits_a_dataset_without_split_with_the_seed(tmp_path: Path) -> None:
    root = touch(tmp_path / "v", *(f"{c}/{i}.mp4" for c in ("a", "b") for i in range(20)))
    proc = run_stage(tmp_path, {"builder": "folder", "root": str(root)}, "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out/manifest_report.json").read_text(encoding="utf-8"))
    assert report["per_split"] == {"test": 8, "train": 28, "val": 4}
    assert any("seed 5" in w for w in report["warnings"])


def test_stage_rejects_an_unknown_builder(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, {"builder": "nope", "root": str(tmp_path)})
    assert proc.returncode == 2 and "dataset.builder = 'nope' is not a known dataset builder" in proc.stderr


def test_stage_names_missing_dataset_keys(tmp_path: Path) -> None:
    proc = run_stage(tmp_path, {"builder": "ucf"})
    assert proc.returncode == 2 and "dataset.root is missing" in proc.stderr
