"""SIGKILL at random points: the decode stage (`python -m stages.decode`, a real subprocess) and a head's
training; after each kill the cache is readable, every entry equals a clean run's, and the re-run computes
only what is missing (the decode summary's done + skipped; the trainer's epochs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from corpus import lavfi_video
from test_training import _manifest, _setup, _write_caches

import pipeline.training.loop as loop
from pipeline.cache import CacheReader
from pipeline.cache.verify import verify_cache
from pipeline.decode.config import DecodeConfig
from pipeline.decode.stage import run_decode
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.manifests.format import Manifest, VideoRecord, read_manifest, write_manifest
from pipeline.training.checkpoint import load_checkpoint
from pipeline.training.config import TrainConfig
from pipeline.training.stage import train_head

REPO = Path(__file__).resolve().parents[1]
N_VIDEOS = 10
TRIALS = 3
DECODE = {"fps": None, "segments": 2, "frames_per_segment": 4, "train_views": 1, "short_side": 112,
          "crop_size": 112, "work_max_side": 160, "face_rate": 2.0, "face_max_frames": 8, "keyframe_size": 64,
          "audio_rates": [16000], "outputs": ["snippets", "frames", "keyframes", "audio"],
          "compression": "gzip", "compression_level": 1}


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """A LocalCluster (1 worker, 1 thread) that outlives the killed drivers, as an external cluster does."""
    with local_cluster(ClusterConfig(workers=1, threads_per_worker=1)) as cluster:
        yield cluster.scheduler_address


def stage_dir(root: Path, videos: Path, address: str) -> Path:
    """A working copy as `dvc repro` sees it: params.yaml, the manifest, and the videos beside them."""
    root.mkdir(parents=True)
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params = {**shipped, "seed": 0, "dataset": {**shipped["dataset"], "name": "k", "root": str(videos)},
              "decode": DECODE, "dask": {"scheduler": address, "retries": 1}}
    (root / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    records = [VideoRecord(f"c/v{i}", f"c/v{i}.mp4", "a") for i in range(N_VIDEOS)]
    write_manifest(Manifest(records, ["a"]), root / "reports/k/manifest.csv")
    return root


def start_decode(root: Path) -> subprocess.Popen:
    """`python -m stages.decode` in `root`, as DVC runs it."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "stages.decode", "--params", "params.yaml"], cwd=root,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def entries(path: Path) -> dict[str, dict[str, np.ndarray]]:
    with CacheReader(path) as cache:
        return {v: {n: cache.read(v, n) for n in cache.names(v)} for v in cache.ids()}


Entries = dict[str, dict[str, np.ndarray]]


def assert_entries_equal(got: Entries, clean: Entries) -> None:
    for video_id, arrays in got.items():
        assert arrays.keys() == clean[video_id].keys(), video_id
        for name, array in arrays.items():
            assert np.array_equal(array, clean[video_id][name]), (video_id, name)


def kill_after_first_entry(proc: subprocess.Popen, cache: Path, delay: float) -> None:
    """SIGKILL `delay` seconds after the cache file first grows past its empty size (one entry written)."""
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if cache.exists() and cache.stat().st_size > 20_000:
            break
        time.sleep(0.02)
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def resume(root: Path, address: str):
    """The stage re-run, in this process (what `python -m stages.decode` calls, with its arguments)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    manifest = read_manifest(root / "reports/k/manifest.csv")
    section = {k: v for k, v in DECODE.items() if not k.startswith("compression")}
    cfg = DecodeConfig(**{**section, "audio_rates": tuple(section["audio_rates"]),
                          "outputs": tuple(section["outputs"]), "seed": params["seed"]})
    return run_decode(manifest=manifest, root=params["dataset"]["root"],
                      cache_path=root / "cache/k/decode.h5", reports_dir=root / "reports/k", cfg=cfg,
                      cluster=ClusterConfig(scheduler=address))


def test_decode_killed_at_random_points_resumes_without_recomputing(tmp_path: Path, scheduler: str) -> None:
    videos = tmp_path / "videos"
    for i in range(N_VIDEOS):
        lavfi_video(videos / f"c/v{i}.mp4", seconds=1.5, size="96x72", pattern=("testsrc", "testsrc2")[i % 2])
    clean_dir = stage_dir(tmp_path / "clean", videos, scheduler)
    assert resume(clean_dir, scheduler).done == N_VIDEOS
    clean = entries(clean_dir / "cache/k/decode.h5")

    rng = np.random.default_rng(0)
    cut_at = []
    for trial in range(TRIALS):
        root = stage_dir(tmp_path / f"trial{trial}", videos, scheduler)
        cache = root / "cache/k/decode.h5"
        kill_after_first_entry(start_decode(root), cache, float(rng.uniform(0.0, 2.0)))
        assert verify_cache(cache).ok, verify_cache(cache).lines()
        survived = entries(cache)
        assert_entries_equal(survived, clean)
        cut_at.append(len(survived))

        summary = resume(root, scheduler)
        assert summary.counts() == {"total": N_VIDEOS, "done": N_VIDEOS - len(survived),
                                    "skipped": len(survived), "failed": 0}
        resumed = entries(cache)
        assert resumed.keys() == clean.keys()
        assert_entries_equal(resumed, clean)
        with h5py.File(cache, "r") as f:
            assert "incomplete" not in f
    assert any(0 < n < N_VIDEOS for n in cut_at), f"no kill landed mid-stage: {cut_at}"


TRAIN_DRIVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pipeline.training.loop as loop
    from test_training import _manifest, _setup
    from pipeline.training.config import TrainConfig
    from pipeline.training.stage import train_head

    original = loop.train_epoch
    def slow_epoch(*args, **kwargs):
        out = original(*args, **kwargs)
        print("epoch", flush=True)
        time.sleep(0.1)  # so that a kill lands mid-run; the values are untouched
        return out
    loop.train_epoch = slow_epoch
    root = Path(sys.argv[1])
    cfg = TrainConfig(epochs=int(sys.argv[2]), batch_size=4, lr=0.05, device="cpu", checkpoint_seconds=0)
    train_head(_setup(selection="last", train=cfg), _manifest(), cache_dir=root / "cache",
               model_dir=root / "models", live_dir=root / "live")
""")

EPOCHS = 20


def wait_for_line(proc: subprocess.Popen, wanted: bytes) -> None:
    """Read the process's stdout until the line `wanted`; fails if the process ends first."""
    seen = []
    for line in iter(proc.stdout.readline, b""):
        if line.strip() == wanted:
            return
        seen.append(line)
    raise AssertionError(f"the process ended (rc {proc.wait()}) before printing {wanted!r}: {seen}")


def test_training_killed_at_random_points_resumes_from_last_pt_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    setup = _setup(selection="last", train=TrainConfig(epochs=EPOCHS, batch_size=4, lr=0.05, device="cpu",
                                                       checkpoint_seconds=0))
    _write_caches(tmp_path / "cache", _manifest())
    whole = train_head(setup, _manifest(), cache_dir=tmp_path / "cache", model_dir=tmp_path / "whole",
                       live_dir=tmp_path / "live_whole")
    reference = torch.load(whole[0], weights_only=True)["state_dict"]
    (tmp_path / "driver.py").write_text(TRAIN_DRIVER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]),
           "OMP_NUM_THREADS": "1"}
    rng = np.random.default_rng(1)
    done_at = []
    for trial in range(TRIALS):
        root = tmp_path / f"trial{trial}"
        shutil.copytree(tmp_path / "cache", root / "cache")
        proc = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(root), str(EPOCHS)],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        wait_for_line(proc, b"epoch")  # the first epoch is done (train_head prints its own lines first)
        time.sleep(float(rng.uniform(0.0, 1.5)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        last = root / "models/run_00/last.pt"
        done = load_checkpoint(last)["state"]["epoch"] if last.exists() else 0   # loads: never torn
        done_at.append(done)

        calls = {"n": 0}
        original = loop.train_epoch

        def counted(*args: object, _original=original, _calls=calls, **kwargs: object) -> dict:
            _calls["n"] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(loop, "train_epoch", counted)
        resumed = train_head(setup, _manifest(), cache_dir=root / "cache", model_dir=root / "models",
                             live_dir=root / "live")
        monkeypatch.undo()
        assert calls["n"] == EPOCHS - done, (trial, done)
        weights = torch.load(resumed[0], weights_only=True)["state_dict"]
        for name, value in reference.items():
            torch.testing.assert_close(weights[name], value, rtol=0, atol=0)
    assert any(0 < n < EPOCHS for n in done_at), f"no kill landed mid-training: {done_at}"


def test_a_training_killed_while_its_curves_were_written_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_torch_thread: None
) -> None:
    """A kill can land while dvclive writes metrics.json (the kill test above once left it empty, and
    dvclive's own resume then failed to parse it): a resumed run writes its curves anew from last.pt."""
    setup = _setup(selection="last", train=TrainConfig(epochs=EPOCHS, batch_size=4, lr=0.05, device="cpu",
                                                       checkpoint_seconds=0))
    _write_caches(tmp_path / "cache", _manifest())
    whole = train_head(setup, _manifest(), cache_dir=tmp_path / "cache", model_dir=tmp_path / "whole",
                       live_dir=tmp_path / "live_whole")
    original, calls = loop.train_epoch, {"n": 0}

    def killed_in_epoch_3(*args: object, **kwargs: object) -> dict:
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("killed")      # after epoch 2's last.pt and curves were written
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "train_epoch", killed_in_epoch_3)
    with pytest.raises(SystemExit):
        train_head(setup, _manifest(), cache_dir=tmp_path / "cache", model_dir=tmp_path / "models",
                   live_dir=tmp_path / "live")
    monkeypatch.undo()
    (tmp_path / "live/run_00/metrics.json").write_text("")      # the kill cut it short
    resumed = train_head(setup, _manifest(), cache_dir=tmp_path / "cache", model_dir=tmp_path / "models",
                         live_dir=tmp_path / "live")
    assert json.loads((tmp_path / "live/run_00/metrics.json").read_text())["step"] == EPOCHS - 1
    curves = sorted((tmp_path / "live/run_00/plots/metrics").rglob("*.tsv"))
    assert curves and all(len(c.read_text().splitlines()) == EPOCHS + 1 for c in curves)   # header + epochs
    torch.testing.assert_close(torch.load(resumed[0], weights_only=True)["state_dict"],
                               torch.load(whole[0], weights_only=True)["state_dict"], rtol=0, atol=0)
