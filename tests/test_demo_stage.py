"""`python -m stages.demo`: reads params.yaml, replaces the dataset folder whole, survives being killed."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline.params_check import check_params
from stages.demo import demo_kwargs

REPO = Path(__file__).resolve().parents[1]


def write_params(folder: Path, clips_per_class: int = 2, seconds: float = 1.0) -> Path:
    """The shipped params.yaml (every stage checks all of it) with a small demo section."""
    params = {
        **yaml.safe_load((REPO / "params.yaml").read_text()),
        "seed": 3,
        "demo": {"videos": str(folder / "demo" / "videos"), "lists": str(folder / "demo" / "lists"),
                 "classes": ["anger", "joy"], "clips_per_class": clips_per_class, "min_seconds": seconds,
                 "max_seconds": seconds, "width": 96, "height": 64, "no_audio_every": 3, "no_face_every": 1,
                 "cues": "complementary"},
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def test_params_need_the_face_rule_and_the_cues(tmp_path):
    params = yaml.safe_load(write_params(tmp_path).read_text())
    kwargs = demo_kwargs(params)
    assert (kwargs["no_face_every"], kwargs["cues"], kwargs["seed"]) == (1, "complementary", 3)
    del params["demo"]["cues"]
    assert check_params(params) == ["demo.cues is missing"]
    params["demo"]["cues"] = "complementary"
    params["demo"]["face_every"] = 3
    [problem] = check_params(params)
    assert problem.startswith("demo.face_every is no longer read: use demo.no_face_every")


def run_stage(params: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "stages.demo", "--params", str(params)]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_stage_writes_the_dataset(tmp_path):
    done = run_stage(write_params(tmp_path))
    assert done.returncode == 0, done.stderr
    demo = tmp_path / "demo"
    assert sorted(p.name for p in demo.iterdir()) == ["README.txt", "demo_info.json", "lists", "videos"]
    assert len(list((demo / "videos").rglob("*.mp4"))) == 4
    info = json.loads((demo / "demo_info.json").read_text())
    assert info["params"]["seed"] == 3 and info["params"]["no_face_every"] == 1
    assert not any(c["has_face"] for c in info["clips"]) and "0 with a face" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "params.yaml"]


def test_stage_replaces_an_earlier_demo_whole(tmp_path):
    assert run_stage(write_params(tmp_path, clips_per_class=3)).returncode == 0
    assert run_stage(write_params(tmp_path, clips_per_class=2)).returncode == 0
    assert len(list((tmp_path / "demo" / "videos").rglob("*.mp4"))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "params.yaml"]


def test_stage_refuses_to_replace_other_data(tmp_path):
    precious = tmp_path / "demo" / "videos" / "mine.mp4"
    precious.parent.mkdir(parents=True)
    precious.write_bytes(b"not generated")
    done = run_stage(write_params(tmp_path))
    assert done.returncode != 0 and "refusing" in done.stderr
    assert precious.read_bytes() == b"not generated"


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_killed_run_leaves_the_previous_dataset_intact(tmp_path):
    params = write_params(tmp_path)
    assert run_stage(params).returncode == 0
    before = {p: p.read_bytes() for p in (tmp_path / "demo").rglob("*") if p.is_file()}
    write_params(tmp_path, clips_per_class=6, seconds=3.0)
    proc = subprocess.Popen([sys.executable, "-m", "stages.demo", "--params", str(params)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".demo.tmp-*/videos/*/*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the stage finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    after = {p: p.read_bytes() for p in (tmp_path / "demo").rglob("*") if p.is_file()}
    assert after == before
    assert run_stage(params).returncode == 0
    assert len(list((tmp_path / "demo" / "videos").rglob("*.mp4"))) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo", "params.yaml"]
