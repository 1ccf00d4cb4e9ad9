"""`dvc repro` end to end on a small demo, in a temporary copy of the repository."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.cache import CacheReader
from pipeline.extractors import get_extractor, list_extractors

REPO = Path(__file__).resolve().parents[1]
SMALL = {
    "demo": {"classes": ["anger", "joy"], "clips_per_class": 3, "min_seconds": 1.0, "max_seconds": 2.0},
    "decode": {"segments": 4, "frames_per_segment": 8, "train_views": 1},
    "dask": {"workers": 1, "threads_per_worker": 2},
    "features": {"mfcc_resnet50": {"options": {"segments": 4}}},
    "train": {"epochs": 2, "batch_size": 4},
}
# Every head entry trains on a real (larger) demo in test_heads_demo.py, through the same head_setup the
# stages call. Under DVC here: a VAANet and a CAAN entry, and the two LSTM entries the status tests below
# change. Each entry is three stage processes (train, evaluate, report) of 10-18 s, mostly imports; all 14
# entries made this fixture 12 of CI's 30 minutes.
HEADS = ("vaanet", "caan", "lstm_fusion", "lstm_visual")


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def set_params(repo: Path, changes: dict) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in changes.items():
        for key, value in values.items():
            old = params[section].get(key)
            params[section][key] = {**old, **value} if isinstance(old, dict) else value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def keep_heads(repo: Path, keys: tuple[str, ...]) -> None:
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["heads"] = {k: v for k, v in params["heads"].items() if k in keys}
    assert set(params["heads"]) == set(keys)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def changed_stages(repo: Path) -> set[str]:
    """Stages out of date, without `manifest`: it lists the dataset folder on every run (always_changed)."""
    status = json.loads(run(["dvc", "status", "--json"], repo))
    assert status.get("manifest", ["always changed"]) == ["always changed"]
    return set(status) - {"manifest"}


@pytest.fixture(scope="module")
def demo_repo(module_tmp: Callable[[str], Path]) -> Path:
    repo = module_tmp("repo")
    files = run(["git", "ls-files", "-co", "--exclude-standard"], REPO).splitlines()
    for name in files:
        if (REPO / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    shutil.rmtree(repo / "reports", ignore_errors=True)
    run(["git", "init", "-q"], repo)
    set_params(repo, SMALL)
    keep_heads(repo, HEADS)
    run([sys.executable, "-m", "pipeline.cli", "graph"], repo)
    # a clone has commits; dvclive (the heads' curves) needs one to name its experiment
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], repo)
    run(["dvc", "repro"], repo)
    return repo


@pytest.mark.slow
def test_repro_fills_every_stage_output(demo_repo: Path) -> None:
    reports = demo_repo / "reports/demo"
    manifest = (reports / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 6
    assert json.loads((reports / "decode_summary.json").read_text()) == {
        "total": 6,
        "done": 6,
        "skipped": 0,
        "failed": 0,
    }
    with CacheReader(demo_repo / "cache/demo/decode.h5") as decode:
        assert len(decode.ids()) == 6
        assert decode.read(decode.ids()[0], "snippets").shape == (2, 4, 8, 112, 112, 3)
    with CacheReader(demo_repo / "cache/demo/faces.h5") as faces:
        found = {v: faces.attrs(v)["n_face_frames"] for v in faces.ids()}
    info = json.loads((demo_repo / "data/demo/demo_info.json").read_text())
    clips = info["clips"] if isinstance(info, dict) else info
    with_face = {c["path"].rsplit(".", 1)[0] for c in clips if c["has_face"]}
    assert with_face and {v for v, n in found.items() if n > 0} == with_face


@pytest.mark.slow
@pytest.mark.parametrize("name", list_extractors())
def test_every_extractor_fills_its_cache_with_labelled_features(demo_repo: Path, name: str) -> None:
    options = yaml.safe_load((demo_repo / "params.yaml").read_text())["features"][name]["options"]
    extractor = get_extractor(name)(**options)
    summary = json.loads((demo_repo / f"reports/demo/feat_{name}_summary.json").read_text())
    assert summary["failed"] == 0 and summary["done"] == 6
    with CacheReader(demo_repo / f"cache/demo/{name}.h5") as cache:
        assert cache.metadata["weights"] == ("none" if name == "mfcc" else "random")
        assert len(cache.ids()) == 6
        for video_id in cache.ids():
            for output, shape in extractor.outputs.items():
                values = cache.read(video_id, output)
                times = cache.read(video_id, f"{output}_times_ms")
                assert values.dtype == extractor.store_dtype
                assert values.shape[values.ndim - len(shape) :] == shape
                # one time span per row: rows are the leading axes (views x segments, frames, seconds...)
                assert times.shape[-1] == 2 and times.shape[:-1] == values.shape[: times.ndim - 1]
                assert np.isfinite(values.astype(np.float32)).all()


@pytest.mark.slow
@pytest.mark.parametrize("key", HEADS)
def test_every_head_is_trained_and_evaluated_with_labelled_reports(demo_repo: Path, key: str) -> None:
    out = demo_repo / "reports/demo" / key
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["runs"] == 1 and 0.0 <= metrics["accuracy"] <= 1.0
    assert "val-best" in metrics["selection"]
    assert set(metrics["features"].values()) <= {"RANDOM WEIGHTS", "none"} and metrics["features"]
    n_test = sum(
        1 for line in (demo_repo / "reports/demo/manifest.csv").read_text().splitlines() if ",test" in line
    )
    predictions = json.loads((out / "predictions/run_00.json").read_text())
    assert len(predictions) == n_test == sum(sum(row) for row in metrics["confusion"])
    assert (demo_repo / "models/demo" / key / "run_00/best.pt").is_file()
    assert (out / "live/run_00/plots/metrics/train/loss.tsv").is_file()
    assert "<h1>Run report" in (out / "report.html").read_text()


@pytest.mark.slow
def test_the_same_seed_gives_the_same_metrics_twice(demo_repo: Path) -> None:
    before = (demo_repo / "reports/demo/lstm_fusion/metrics.json").read_text()
    shutil.rmtree(demo_repo / "models/demo/lstm_fusion")
    run(["dvc", "repro", "-s", "train@lstm_fusion"], demo_repo)
    run(["dvc", "repro", "-s", "-f", "evaluate@lstm_fusion"], demo_repo)
    assert (demo_repo / "reports/demo/lstm_fusion/metrics.json").read_text() == before


@pytest.mark.slow
def test_only_the_stages_a_parameter_feeds_are_out_of_date(demo_repo: Path) -> None:
    assert changed_stages(demo_repo) == set()
    set_params(demo_repo, {"heads": {"lstm_visual": {"options": {"fusion": "visual", "hidden": 64}}}})
    assert changed_stages(demo_repo) == {"train@lstm_visual", "evaluate@lstm_visual"}
    run(["dvc", "repro", "report@lstm_visual"], demo_repo)  # train@, evaluate@ and the report downstream
    assert changed_stages(demo_repo) == set()
    set_params(demo_repo, {"dask": {"workers": 2}})
    assert changed_stages(demo_repo) == set(), "dask settings change speed, never results"
    set_params(demo_repo, {"features": {"alexnet_fc7": {"batch_size": 4}}})
    assert changed_stages(demo_repo) == {"feat@alexnet_fc7"}
    set_params(demo_repo, {"faces": {"margin": 0.3}})
    assert changed_stages(demo_repo) == {"faces", "feat@alexnet_fc7"}
    set_params(demo_repo, {"decode": {"face_rate": 2.0}})
    assert changed_stages(demo_repo) == {"faces", "decode", "feat@alexnet_fc7"}
