"""What would stop a later stage on this machine is found by the run's first stage (`manifest`), before any
video is decoded. A checkpoint named by params.yaml: a missing file, a folder, a file that is no checkpoint
and one that does not fit its extractor each stop the stage with one line naming the entry and the file;
every official layout the extractors load passes. A device that is not here (an extractor's on a
LocalCluster, a head's `train.device`) stops it the same way. Where the stage's outputs are all there (a
colleague who pulled them), each is a warning. Checkpoints are made here in the official layouts, stored
in a few bytes (zero-stride views)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import yaml

from pipeline.cache.writer import CacheWriter
from pipeline.extractors.base import Extractor
from pipeline.file_memo import FileMemo
from pipeline.preflight import weights_problems
from stages import manifest as manifest_stage
from tests.test_extractors_r3d import cheap_state as r3d_state
from tests.test_extractors_r3d import save_2020, save_cvpr2018
from tests.test_extractors_vgg import cheap_state, dag_state
from tests.test_manifests_stage import REPO, ucf_dataset, write_params


def saved(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


OFFICIAL: dict[str, tuple[str, dict, Callable[[Path], Path]]] = {   # case -> (extractor, options, file)
    "alexnet": ("alexnet_fc7", {}, lambda d: saved(cheap_state(torchvision.models.alexnet), d / "a.pth")),
    "alexnet_spec": ("alexnet_fc7_spec", {}, lambda d: saved(cheap_state(torchvision.models.alexnet),
                                                             d / "a.pth")),
    "vgg16": ("vgg16_fc6", {}, lambda d: saved(cheap_state(torchvision.models.vgg16), d / "v.pth")),
    "vggface_dag": ("vggface_fc6", {}, lambda d: saved(
        dag_state(cheap_state(torchvision.models.vgg16, num_classes=2622)), d / "vgg_face_dag.pth")),
    "r3d_cvpr2018": ("r3d101_conv5", {}, lambda d: save_cvpr2018(d / "resnet-101-kinetics.pth", r3d_state())),
    "r3d_2020": ("r3d101_conv5", {}, lambda d: save_2020(d / "r3d101_K_200ep.pth", r3d_state(), 700)),
    "resnet18": ("mfcc_resnet18", {}, lambda d: saved(cheap_state(torchvision.models.resnet18), d / "r.pth")),
    "resnet18_random_conv1": ("mfcc_resnet18", {"conv1": "random"},
                              lambda d: saved(cheap_state(torchvision.models.resnet18), d / "r.pth")),
    "resnet50": ("mfcc_resnet50", {}, lambda d: saved(cheap_state(torchvision.models.resnet50), d / "r.pth")),
}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_stage(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Ran]:
    """The manifest stage's main in process (a subprocess costs CI seconds: torch's import), in `cwd`,
    on `dataset` with `merge` (`write_params`)."""
    def run(tmp: Path, dataset: dict, *extra: str, merge: dict, cwd: Path | None = None) -> Ran:
        params = write_params(tmp, dataset, merge)
        monkeypatch.chdir(cwd or tmp)
        capsys.readouterr()
        code = manifest_stage.main(["--params", str(params), *extra])
        said = capsys.readouterr()
        return Ran(code, said.out, said.err)

    return run


def params_with(name: str, weights: str | Path, options: dict | None = None) -> dict:
    return {"features": {name: {"weights": str(weights), "batch_size": 4, "options": options or {}}}}


@pytest.mark.parametrize("case", OFFICIAL)
def test_every_official_layout_passes(tmp_path: Path, case: str) -> None:
    name, options, make = OFFICIAL[case]
    assert weights_problems(params_with(name, make(tmp_path), options)) == {}


def test_random_weights_and_an_extractor_without_weights_need_no_file() -> None:
    params = {"features": {**params_with("alexnet_fc7", "random")["features"],
                           **params_with("mfcc", "none")["features"]}}
    assert weights_problems(params) == {}


def test_each_wrong_file_is_one_line_naming_the_entry_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "folder.pth").mkdir()
    (tmp_path / "notes.pth").write_text("not a checkpoint\n")
    resnet18 = saved(cheap_state(torchvision.models.resnet18), tmp_path / "resnet18.pth")
    alexnet = saved(cheap_state(torchvision.models.alexnet), tmp_path / "alexnet.pth")
    cases = {   # extractor -> (file, what the line must say)
        "alexnet_fc7": (tmp_path / "typo.pth", "not found"),
        "vgg16_fc6": (tmp_path / "folder.pth", "is not a file"),
        "r3d101_conv5": (tmp_path / "notes.pth", "does not load into r3d101_conv5"),
        "mfcc_resnet50": (resnet18, "does not load into mfcc_resnet50"),      # another architecture
        "vggface_fc6": (alexnet, "does not load into vggface_fc6"),
    }
    params = {"features": {k: params_with(k, f)["features"][k] for k, (f, _) in cases.items()}}
    problems = weights_problems(params)
    assert problems.keys() == cases.keys()
    for name, (path, said) in cases.items():
        line = problems[name]
        assert line.startswith(f"features.{name}.weights: {path}") and said in line, line
        assert "\n" not in line and len(line) < 500, line


def test_a_fitting_file_is_read_once_while_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first stage runs on every `dvc repro`: an unchanged checkpoint is not read again, a rewritten
    one is, and a change of the options that shape the network checks it again."""
    read: list[Path] = []
    real = Extractor.check_checkpoint.__func__          # type: ignore[attr-defined]
    monkeypatch.setattr(Extractor, "check_checkpoint",
                        classmethod(lambda cls, path, **o: read.append(path) or real(cls, path, **o)))
    path = saved(cheap_state(torchvision.models.resnet18), tmp_path / "r.pth")
    stamp = time.time_ns() - 10**10                     # past the memo's settling time
    os.utime(path, ns=(stamp, stamp))
    time.sleep(0.05)
    memo = FileMemo(settle_ns=0)
    assert weights_problems(params_with("mfcc_resnet18", path), memo) == {} and len(read) == 1
    memo.save(tmp_path / "memo.json")
    again = FileMemo.load(tmp_path / "memo.json")
    assert weights_problems(params_with("mfcc_resnet18", path), again) == {} and len(read) == 1
    assert weights_problems(params_with("mfcc_resnet18", path, {"conv1": "random"}), again) == {}
    assert len(read) == 2
    saved(cheap_state(torchvision.models.resnet50), path)           # rewritten: another network
    assert "does not load" in weights_problems(params_with("mfcc_resnet18", path), again)["mfcc_resnet18"]


def test_the_manifest_stage_stops_on_missing_checkpoints_before_any_video(
        tmp_path: Path, run_stage: Callable[..., Ran]) -> None:
    dataset = ucf_dataset(tmp_path)
    features = {"features": {"alexnet_fc7": {"weights": str(tmp_path / "alexnet.pth"), "batch_size": 4},
                             "vgg16_fc6": {"weights": str(tmp_path / "vgg16.pth"), "batch_size": 4}}}
    proc = run_stage(tmp_path, dataset, "--out", str(tmp_path / "out"), merge=features)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("manifest: ") for line in lines), lines
    assert f"features.alexnet_fc7.weights: {tmp_path / 'alexnet.pth'} not found" in lines[0]
    assert f"features.vgg16_fc6.weights: {tmp_path / 'vgg16.pth'} not found" in lines[1]
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_a_cache_that_holds_every_video_turns_the_stop_into_a_warning(tmp_path: Path,
                                                                      run_stage: Callable[..., Ran]) -> None:
    """A colleague who pulled the feature caches (docs/team.md) runs no network and has no checkpoint."""
    dataset = ucf_dataset(tmp_path)
    features = {"features": {"alexnet_fc7": {"weights": str(tmp_path / "alexnet.pth"), "batch_size": 4}}}
    cache = tmp_path / "cache" / "t" / "alexnet_fc7.h5"
    cache.parent.mkdir(parents=True)
    ids = ["anger/a", "joy/a", "joy/ü", "anger/b"]
    with CacheWriter(cache, stage="features", config={}, config_hash="h", weights="ab12") as writer:
        for video_id in ids:
            writer.write(video_id, {"fc7": np.zeros((1, 4), np.float16)}, {})
    proc = run_stage(tmp_path, dataset, merge=features, cwd=tmp_path)
    assert proc.returncode == 2 and "alexnet.pth not found" in proc.stderr, proc.stderr   # joy/c is missing
    with CacheWriter(cache, stage="features", config={}, config_hash="h", weights="ab12") as writer:
        writer.write("joy/c", {"fc7": np.zeros((1, 4), np.float16)}, {})
    proc = run_stage(tmp_path, dataset, merge=features, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if "alexnet.pth" in line]
    assert warning.startswith("manifest: warning: features.alexnet_fc7.weights"), warning
    assert "the outputs of feat@alexnet_fc7 are all there" in warning
    assert (tmp_path / "reports/t/manifest.csv").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here: a cuda device is no mistake")
def test_a_cuda_device_on_a_machine_without_one_stops_the_first_stage(tmp_path: Path,
                                                                      run_stage: Callable[..., Ran]) -> None:
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    features = {"alexnet_fc7": {**shipped["features"]["alexnet_fc7"], "device": "cuda:1"}}
    merge = {"features": features, "train": {**shipped["train"], "device": "cuda"},
             "heads": {"caan": shipped["heads"]["caan"]}}
    proc = run_stage(tmp_path, ucf_dataset(tmp_path), "--out", str(tmp_path / "out"), merge=merge)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, lines
    assert "features.alexnet_fc7: device 'cuda:1': torch sees no CUDA device here" in lines[0]
    assert "train.device: device 'cuda': torch sees no CUDA device here" in lines[1]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out" / "manifest.csv").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is here: a cuda device is no mistake")
def test_a_head_trained_already_turns_its_device_stop_into_a_warning(tmp_path: Path,
                                                                     run_stage: Callable[..., Ran]) -> None:
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    merge = {"train": {**shipped["train"], "device": "cuda"}, "heads": {"caan": shipped["heads"]["caan"]}}
    (tmp_path / "models/t/caan/run_00").mkdir(parents=True)
    (tmp_path / "models/t/caan/run_00/best.pt").write_bytes(b"pulled")
    proc = run_stage(tmp_path, ucf_dataset(tmp_path), merge=merge, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if "cuda" in line]
    assert warning.startswith("manifest: warning: train.device: device 'cuda'"), warning
    assert "the outputs of train@caan are all there" in warning


def test_a_detection_ground_truth_is_checked_first_and_its_bytes_reach_the_evaluations(
        tmp_path: Path, run_stage: Callable[..., Ran]) -> None:
    """A bad CSV stops the first stage naming its line; a good one's sha256 is the manifest stage's output
    `ground_truth.json`, which every evaluate@ depends on, so an edit of the CSV at the same path re-runs
    them (a path in params.yaml alone did not)."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    csv = tmp_path / "segments.csv"

    def run_with(truth: Path) -> Ran:
        merge = {"train": {**shipped["train"], "detection_ground_truth": str(truth)},
                 "heads": {"caan": shipped["heads"]["caan"]}}
        return run_stage(tmp_path, dataset, "--out", str(tmp_path / "out"), merge=merge)

    dataset = ucf_dataset(tmp_path)
    csv.write_text("video_id,start_s,end_s\njoy/a,0,1\njoy/a,2,1.5\n")
    bad = run_with(csv)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"manifest: {tmp_path / 'params.yaml'}: train.detection_ground_truth: {csv}:3: need 0 <= start_s < "
        "end_s; got 2.0, 1.5"], bad.stderr
    missing = run_with(tmp_path / "nowhere.csv")
    assert missing.returncode == 2 and f"{tmp_path / 'nowhere.csv'} not found" in missing.stderr

    csv.write_text("video_id,start_s,end_s\njoy/a,0,1\n")
    good = run_with(csv)
    assert good.returncode == 0, good.stderr
    recorded = json.loads((tmp_path / "out/ground_truth.json").read_text())["files"]
    assert recorded == {str(csv): hashlib.sha256(csv.read_bytes()).hexdigest()}
    csv.write_text("video_id,start_s,end_s\nsomeone/else,0,1\n")
    elsewhere = run_with(csv)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "names no video of the manifest" in elsewhere.stdout, elsewhere.stdout
    assert json.loads((tmp_path / "out/ground_truth.json").read_text())["files"] != recorded

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert "reports/${dataset.name}/ground_truth.json" in stages["evaluate"]["do"]["deps"]
    assert any("ground_truth.json" in str(out) for out in stages["manifest"]["outs"])


def test_without_the_videos_the_kept_manifest_still_gets_this_machines_ground_truth(
        tmp_path: Path, run_stage: Callable[..., Ran]) -> None:
    """A colleague who pulled the manifest and the caches has no dataset folder: the heads still run, so
    `ground_truth.json` is written from the CSV on this machine."""
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    dataset = ucf_dataset(tmp_path)
    out = tmp_path / "out"
    assert run_stage(tmp_path, dataset, "--out", str(out), merge={}).returncode == 0
    shutil.rmtree(dataset["root"])
    csv = tmp_path / "segments.csv"
    csv.write_text("video_id,start_s,end_s\njoy/a,0,1\n")
    merge = {"train": {**shipped["train"], "detection_ground_truth": str(csv)},
             "heads": {"caan": shipped["heads"]["caan"]}}
    kept = run_stage(tmp_path, dataset, "--out", str(out), merge=merge)
    assert kept.returncode == 0 and "does not exist on this machine: keeping" in kept.stderr, kept.stderr
    assert json.loads((out / "ground_truth.json").read_text())["files"] == {
        str(csv): hashlib.sha256(csv.read_bytes()).hexdigest()}
    csv.unlink()
    gone = run_stage(tmp_path, dataset, "--out", str(out), merge=merge)
    assert gone.returncode == 2 and f"{csv} not found" in gone.stderr, gone.stderr
