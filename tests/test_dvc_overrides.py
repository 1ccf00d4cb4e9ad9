"""`dvc exp run -S heads.<key>.train.<name>=...` without a leading `+`: every head entry of params.yaml
lists the per-head train keys (null keeps the shared value), and DVC's own override sets them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from pipeline.features.config import extractor_spec
from pipeline.params_check import check_params
from pipeline.training.config import HEAD_TRAIN_KEYS, head_setup

REPO = Path(__file__).resolve().parents[1]
STAGE = """\
stages:
  seen:
    cmd: cp params.yaml seen.yaml
    params: [train, heads.vaanet, heads.ten]
    outs: [seen.yaml]
"""


def params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_every_head_lists_the_per_head_train_keys() -> None:
    missing = {key: sorted(set(HEAD_TRAIN_KEYS) - set(entry.get("train") or {}))
               for key, entry in params()["heads"].items()}
    assert not any(missing.values()), missing


def test_null_keeps_the_shared_value_and_a_value_overrides_it() -> None:
    p = params()
    assert p["heads"]["caan"]["train"]["lr"] is None
    assert head_setup(p, "caan").train.lr == p["train"]["lr"]
    assert head_setup(p, "caan").feature_scale == p["train"]["feature_scale"] == "rms"
    assert head_setup(p, "ten").feature_scale == "standard"
    p["heads"]["caan"]["train"]["lr"] = 0.01
    assert head_setup(p, "caan").train.lr == 0.01 and head_setup(p, "caan_face").train.lr == p["train"]["lr"]


def dvc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["dvc", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_dvc_exp_run_sets_a_head_train_key_without_plus(tmp_path: Path) -> None:
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text(STAGE)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert dvc(["init", "-q"], tmp_path).returncode == 0
    subprocess.run([*git, "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "params"], cwd=tmp_path, check=True)

    # a key no entry lists still needs DVC's `+` (what this file's fix is about)
    refused = dvc(["exp", "run", "-S", "heads.vaanet.train.gamma=0.5"], tmp_path)
    assert refused.returncode != 0 and "+heads.vaanet.train.gamma" in refused.stderr + refused.stdout

    # with a head's ablation switch and the extractors' precision, the other keys sweeps set (docs/dvc.md)
    done = dvc(["exp", "run", "-S", "heads.vaanet.train.lr=0.01", "-S", "heads.ten.train.epochs=3",
                "-S", "heads.vaanet.options.spatial=false", "-S", "precision=bf16"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    seen = yaml.safe_load((tmp_path / "seen.yaml").read_text())  # what the stage read
    assert not check_params(seen)
    assert head_setup(seen, "vaanet").train.lr == 0.01 and head_setup(seen, "ten").train.epochs == 3
    assert head_setup(seen, "vaanet").train.epochs == seen["train"]["epochs"]
    assert head_setup(seen, "ten").feature_scale == "standard"  # the entry's other keys are untouched
    assert seen["heads"]["vaanet"]["options"]["spatial"] is False
    assert extractor_spec(seen, "r3d101_conv5").options["precision"] == "bf16"
    assert "precision" not in extractor_spec(seen, "mfcc").options          # it has no such option
