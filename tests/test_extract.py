"""`vemo extract` on real generated clips: the stages' caches, .npy files, failures, resume, and the same
features as the stage drivers give with a DVC project's decode configuration."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import encode_test_video

from pipeline.cache import CacheReader
from pipeline.cli import main
from pipeline.config import load_params
from pipeline.decode.config import decode_config
from pipeline.decode.stage import run_decode
from pipeline.defaults import DEFAULTS, SECTIONS
from pipeline.engine.cluster import cluster_config, local_cluster
from pipeline.extract import extract_settings, extractor_specs_for
from pipeline.features.stage import run_features
from pipeline.manifests.format import Manifest, VideoRecord

REPO = Path(__file__).resolve().parents[1]
TINY = ["decode.segments=2", "decode.frames_per_segment=4", "decode.keyframe_size=64",
        "features.alexnet_fc7.batch_size=4", "dask.workers=1"]
EXTRACTORS = ("mfcc", "alexnet_fc7")


def run_cli(*args: str) -> tuple[int, str]:
    """`vemo ARGS`, with what it printed (stdout and stderr)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = main(list(args))
    return code, printed.getvalue()


def extract_args(clips: dict[str, Path], out: Path) -> list[str]:
    sets = [a for s in TINY for a in ("--set", s)]
    return ["extract", *map(str, clips.values()), *[a for e in EXTRACTORS for a in ("-e", e)],
            "--workers", "1", "--device", "cpu", "--format", "npy", "--out", str(out), *sets]


@pytest.fixture(scope="module")
def clips(module_tmp: Callable[[str], Path]) -> dict[str, Path]:
    root = module_tmp("clips")
    made = {name: encode_test_video(root / f"{name}.mp4", seconds=1.2, size="96x72") for name in ("a", "b")}
    (root / "bad.mp4").write_bytes(b"not a video at all")
    return {**made, "bad": root / "bad.mp4"}


@pytest.fixture(scope="module")
def extracted(clips: dict[str, Path], module_tmp: Callable[[str], Path]) -> dict:
    out = module_tmp("extract") / "out"
    code, printed = run_cli(*extract_args(clips, out))
    return {"out": out, "code": code, "printed": printed}


def test_extract_writes_the_caches_the_npy_files_and_one_failure_line(extracted: dict) -> None:
    out = extracted["out"]
    assert extracted["code"] == 0, extracted["printed"]
    with open(out / "failures.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["video_id"], r["stage"]) for r in rows] == [("bad", "decode")]
    assert "1 video(s) failed" in extracted["printed"]
    assert {p.name for p in (out / "cache").glob("*.h5")} == {"decode.h5", "mfcc.h5", "alexnet_fc7.h5"}
    for name in EXTRACTORS:
        with CacheReader(out / "cache" / f"{name}.h5") as cache:
            assert cache.ids() == ["a", "b"]
            for video_id in ("a", "b"):
                for array in cache.names(video_id):
                    saved = np.load(out / name / f"{video_id}.{array}.npy")
                    np.testing.assert_array_equal(saved, cache.read(video_id, array))
        assert not list((out / name).glob("bad.*"))
    assert np.load(out / "alexnet_fc7" / "a.fc7.npy").shape == (2, 4096)       # 1.2 s: two 1-second rows
    assert np.load(out / "alexnet_fc7" / "a.fc7_times_ms.npy").tolist() == [[0, 1000], [1000, 1200]]
    info = json.loads((out / "alexnet_fc7" / "extractor.json").read_text())
    assert info["random_weights"] and "RANDOM WEIGHTS" in info["note"]
    assert not json.loads((out / "mfcc" / "extractor.json").read_text())["random_weights"]
    assert "alexnet_fc7: 2 of 3 videos" in extracted["printed"] and "RANDOM WEIGHTS" in extracted["printed"]


def test_only_the_decode_outputs_the_extractors_read_are_decoded(extracted: dict) -> None:
    with CacheReader(extracted["out"] / "cache" / "decode.h5") as decode:
        assert decode.metadata["config"]["outputs"] == ["keyframes", "audio"]
        assert decode.metadata["config"]["train_views"] == 0
        assert not any(n.startswith(("snippets", "frames")) for n in decode.names("a"))


def test_features_equal_the_stage_drivers_with_the_dvc_decode_configuration(
        extracted: dict, clips: dict[str, Path], tmp_path: Path) -> None:
    """The stages as `dvc repro` runs them (every decode output, a training view), same settings."""
    settings = extract_settings(None, TINY)
    manifest = Manifest([VideoRecord(v, str(clips[v]), "") for v in ("a", "b")], [])
    specs = extractor_specs_for(EXTRACTORS, settings, weights={}, device="cpu")
    cluster = cluster_config(settings)
    with local_cluster(cluster) as running:
        shared = cluster_config({"dask": {**settings["dask"], "scheduler": running.scheduler_address}})
        run_decode(manifest=manifest, root="/", cache_path=tmp_path / "decode.h5", reports_dir=tmp_path,
                   cfg=decode_config(settings), cluster=shared)
        with CacheReader(tmp_path / "decode.h5") as decode:
            assert decode.metadata["config"]["outputs"] == ["snippets", "frames", "keyframes", "audio"]
            upstream = {"decode": decode.metadata["config_hash"]}
        for name in EXTRACTORS:
            run_features(spec=specs[name], manifest=manifest, root="/",
                         sources={"decode": str(tmp_path / "decode.h5")}, upstream=upstream,
                         cache_path=tmp_path / f"{name}.h5", reports_dir=tmp_path, cluster=shared)
    for name in EXTRACTORS:
        with CacheReader(tmp_path / f"{name}.h5") as stage, \
                CacheReader(extracted["out"] / "cache" / f"{name}.h5") as ours:
            assert stage.metadata["weights"] == ours.metadata["weights"]
            same = {k: v for k, v in stage.metadata["config"].items() if k != "upstream"}
            assert same == {k: v for k, v in ours.metadata["config"].items() if k != "upstream"}
            for video_id in ("a", "b"):
                assert sorted(stage.names(video_id)) == sorted(ours.names(video_id))
                for array in stage.names(video_id):
                    np.testing.assert_array_equal(ours.read(video_id, array), stage.read(video_id, array),
                                                  err_msg=f"{name} {video_id} {array}")


def test_a_second_run_skips_every_video_and_rewrites_no_npy(extracted: dict, clips: dict[str, Path]) -> None:
    """The same videos, given as a --list this time."""
    out = extracted["out"]
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/*.npy")}
    listed = out.parent / "videos.txt"
    listed.write_text("# the clips\n" + "".join(f"{p}\n\n" for p in clips.values()))
    args = [a for a in extract_args(clips, out) if a not in map(str, clips.values())]
    code, printed = run_cli(*args, "--list", str(listed))
    assert code == 0
    for name in EXTRACTORS:
        assert f"[feat@{name}] 0 done, 2 skipped (cached), 0 failed of 2 videos" in printed
    assert "[decode] 0 done, 2 skipped (cached), 1 failed of 3 videos" in printed
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/*.npy")} == before


@pytest.mark.parametrize(("args", "says"), [
    (["-e", "alexnet"], "unknown extractor 'alexnet' (did you mean 'alexnet_fc7'? valid: alexnet_fc7, "),
    (["-e", "alexnet_fc7", "--weights", "missing.pth"], "--weights alexnet_fc7=missing.pth: no such file"),
    (["-e", "alexnet_fc7", "-e", "mfcc_resnet18", "--weights", "x.pth"], "several load weights"),
    (["-e", "mfcc", "--set", "decode.segments=ten"], "setting decode.segments = 'ten'"),
    (["-e", "mfcc", "--set", "decode.segmnts=2"], "unknown key decode.segmnts (did you mean decode.segm"),
    (["-e", "mfcc", "--format", "h5", "--list", "no-such-list.txt"], "no-such-list.txt"),
])
def test_a_users_mistake_is_one_line_and_exit_2(args: list[str], says: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, printed = run_cli("extract", "clip.mp4", *args)
    assert code == 2 and says in printed and len(printed.strip().splitlines()) == 1, printed
    assert not (tmp_path / "features").exists(), "nothing is written before the mistake is reported"


def test_a_checkpoint_that_does_not_fit_is_one_line_before_any_video(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.pth").write_text("not a checkpoint\n")
    code, printed = run_cli("extract", "clip.mp4", "-e", "alexnet_fc7", "--weights", "notes.pth")
    said = f"--weights alexnet_fc7={tmp_path / 'notes.pth'}: does not load into alexnet_fc7"
    assert code == 2 and said in printed and len(printed.strip().splitlines()) == 1, printed
    assert not (tmp_path / "features").exists()


def test_the_shipped_defaults_are_params_yaml_sections() -> None:
    params = load_params(REPO / "params.yaml")
    assert {k: params[k] for k in SECTIONS} == DEFAULTS, \
        "params.yaml changed: copy its seed/dask/decode/faces/features sections into pipeline/defaults.py"


def test_a_cache_another_process_holds_is_one_line_and_exit_2(clips: dict[str, Path], tmp_path: Path) -> None:
    """A second `vemo extract` into the same folder while the first still writes (or a notebook reads)
    its cache: HDF5's lock refuses the file, and the run says so in one line instead of a traceback."""
    cache = tmp_path / "out" / "cache" / "decode.h5"
    cache.parent.mkdir(parents=True)
    h5py.File(cache, "w").close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time, h5py; f = h5py.File(sys.argv[1], 'r'); print('open', "
         "flush=True); time.sleep(120)", str(cache)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        code, printed = run_cli(*extract_args(clips, tmp_path / "out"))
    finally:
        holder.kill()
        holder.wait()
    assert code == 2, printed
    assert f"cache {cache} is open in another process" in printed and "Traceback" not in printed, printed
    assert not (tmp_path / "out" / "mfcc").exists()
