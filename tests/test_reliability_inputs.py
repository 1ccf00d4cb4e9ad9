"""Every bad input of `corpus.py` through the real decode stage, then faces and MFCC over its cache, in one
run each: each file's outcome (ok, warned, rejected naming the file) and the other videos untouched."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from corpus import Case, build_corpus, lavfi_video

from pipeline.cache import CacheReader
from pipeline.decode.config import DecodeConfig
from pipeline.decode.stage import run_decode
from pipeline.decode.video import decode_video
from pipeline.engine.cluster import ClusterConfig, local_cluster
from pipeline.errors import VideoError
from pipeline.faces.config import FaceConfig
from pipeline.faces.stage import run_faces
from pipeline.features.config import ExtractorSpec
from pipeline.features.stage import run_features
from pipeline.manifests.format import Manifest, VideoRecord, read_manifest, write_manifest
from pipeline.media.probe import probe_video

CFG = DecodeConfig(segments=2, frames_per_segment=4, train_views=1, work_max_side=96, keyframe_size=32)


def rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return {row["video_id"]: row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterConfig]:
    """One LocalCluster (1 worker, 2 threads) that every stage of this module runs on."""
    with local_cluster(ClusterConfig(workers=1, threads_per_worker=2)) as local:
        yield ClusterConfig(scheduler=local.scheduler_address)


@pytest.fixture(scope="module")
def corpus_run(module_tmp: Callable[[str], Path], cluster: ClusterConfig) -> dict[str, object]:
    """The corpus decoded, then faces and MFCC over the decode cache."""
    root = module_tmp("corpus")
    cases = build_corpus(root / "videos")
    manifest = Manifest([VideoRecord(c.name, c.rel, "a") for c in cases], ["a"])
    decode = run_decode(manifest=manifest, root=root / "videos", cache_path=root / "decode.h5",
                        reports_dir=root / "reports", cfg=CFG, cluster=cluster)
    faces = run_faces(manifest=manifest, root=root / "videos", decode_path=root / "decode.h5",
                      decode_hash="h", cache_path=root / "faces.h5", reports_dir=root / "reports",
                      cfg=FaceConfig(), cluster=cluster)
    spec = ExtractorSpec(name="mfcc", weights="none", batch_size=4, videos_per_task=4, device="cpu")
    mfcc = run_features(spec=spec, manifest=manifest, root=root / "videos",
                        sources={"decode": str(root / "decode.h5")}, upstream={"decode": "h"},
                        cache_path=root / "mfcc.h5", reports_dir=root / "reports", cluster=cluster)
    return {"root": root, "cases": cases, "manifest": manifest, "decode": decode, "faces": faces,
            "mfcc": mfcc}


def by_outcome(cases: list[Case], *outcomes: str) -> set[str]:
    return {c.name for c in cases if c.expect in outcomes}


def test_each_bad_input_is_rejected_naming_the_file_and_the_others_are_decoded(corpus_run) -> None:
    root, cases, summary = corpus_run["root"], corpus_run["cases"], corpus_run["decode"]
    rejected = by_outcome(cases, "reject")
    assert summary.counts() == {"total": len(cases), "done": len(cases) - len(rejected), "skipped": 0,
                                "failed": len(rejected)}
    failures = rows(root / "reports/decode_failures.csv")
    assert set(failures) == rejected
    for case in cases:
        if case.expect == "reject":
            assert case.reason in failures[case.name]["reason"], (case, failures[case.name])
            assert failures[case.name]["path"] == str(root / "videos" / case.rel)
    probe = rows(root / "reports/probe.csv")
    assert set(probe) == {c.name for c in cases}
    assert {v for v, row in probe.items() if row["status"] == "failed"} == rejected
    assert json.loads((root / "reports/decode_summary.json").read_text())["failed"] == len(rejected)


def test_warnings_are_recorded_in_the_entry_and_clean_inputs_have_none(corpus_run) -> None:
    root, cases = corpus_run["root"], corpus_run["cases"]
    with CacheReader(root / "decode.h5") as cache:
        assert set(cache.ids()) == by_outcome(cases, "ok", "warn")
        for case in cases:
            if case.expect == "reject":
                continue
            warnings = cache.attrs(case.name)["warnings"]
            assert (case.reason in warnings) if case.expect == "warn" else warnings == "", (case, warnings)
            assert cache.read(case.name, "snippets").shape == (2, 2, 4, 112, 112, 3)


def test_geometry_of_rotated_tiny_4k_and_very_long_videos(corpus_run) -> None:
    with CacheReader(corpus_run["root"] / "decode.h5") as cache:
        assert cache.attrs("rotated")["rotation"] == 90
        assert cache.read("rotated", "frames").shape[1:] == (64, 48, 3)          # portrait after rotation
        assert cache.read("tiny", "frames").shape[1:] == (5, 7, 3)
        assert cache.read("odd_size", "frames").shape[1:] == (41, 67, 3)
        assert cache.read("uhd_4k", "frames").shape[1:] == (54, 96, 3)           # 3840x2160 fit to 96
        assert (cache.attrs("uhd_4k")["width"], cache.attrs("uhd_4k")["height"]) == (3840, 2160)
        long = cache.attrs("very_long")
        assert long["n_frames"] == 7200 and long["duration_ms"] == 7_200_000
        assert cache.read("very_long", "keyframes").shape == (7200, 32, 32, 3)
        assert cache.read("very_long", "frames").shape[0] == CFG.face_max_frames
        assert cache.attrs("vfr")["duration_ms"] == pytest.approx(3920, abs=100)
        assert cache.read("vfr", "keyframes_times_ms")[-1, 1] == pytest.approx(3920, abs=100)


def test_downstream_stages_name_the_videos_decode_rejected_and_process_the_rest(corpus_run) -> None:
    root, cases = corpus_run["root"], corpus_run["cases"]
    rejected = by_outcome(cases, "reject")
    for stage, summary in (("faces", corpus_run["faces"]), ("feat_mfcc", corpus_run["mfcc"])):
        failures = rows(root / f"reports/{stage}_failures.csv")
        assert set(failures) == rejected, stage
        assert all("no decode entry" in row["reason"] for row in failures.values()), stage
        assert (summary.done, summary.failed) == (len(cases) - len(rejected), len(rejected)), stage
    with CacheReader(root / "mfcc.h5") as mfcc, CacheReader(root / "faces.h5") as faces:
        assert set(mfcc.ids()) == set(faces.ids()) == by_outcome(cases, "ok", "warn")
        assert mfcc.read("no_audio", "has_audio").max() == 0 and mfcc.read("plain", "has_audio").min() == 1
        assert faces.read("tiny", "face_frame_index").size == 0


def test_a_rerun_skips_every_decoded_video_and_retries_only_the_rejected(
    corpus_run, cluster: ClusterConfig, tmp_path: Path
) -> None:
    """On the same long-lived cluster whose worker read the decode cache for faces and MFCC: those stages
    released their readers, so decode can open its cache for writing again."""
    root, cases = corpus_run["root"], corpus_run["cases"]
    again = run_decode(manifest=corpus_run["manifest"], root=root / "videos",
                       cache_path=root / "decode.h5",
                       reports_dir=tmp_path, cfg=CFG, cluster=cluster)
    rejected = by_outcome(cases, "reject")
    assert (again.done, again.skipped, again.failed) == (0, len(cases) - len(rejected), len(rejected))


def test_max_seconds_rejects_a_long_video_before_decoding_it(corpus_run) -> None:
    path = corpus_run["root"] / "videos/very_long.mp4"
    with pytest.raises(VideoError, match=r"7200 s long, over decode.max_seconds \(3600 s\)") as err:
        decode_video(path, "very_long", probe_video(path), DecodeConfig(max_seconds=3600))
    assert str(path) in str(err.value)


def test_manifest_with_a_duplicate_id_or_an_unknown_label_names_the_file(tmp_path: Path) -> None:
    good = Manifest([VideoRecord("x/1", "x/1.mp4", "a"), VideoRecord("x/2", "x/2.mp4", "b")], ["a", "b"])
    path = tmp_path / "manifest.csv"
    for line, message in (("x/1,x/1 copy.mp4,a,", r"duplicate video_id 'x/1' in manifest \(path x/1 copy"),
                          ("x/3,x/3.mp4,c,", r"'x/3' \(x/3.mp4\): label 'c' is not in the class list")):
        write_manifest(good, path)
        with path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
        with pytest.raises(ValueError, match=message) as err:
            read_manifest(path)
        assert str(path) in str(err.value)


def test_same_stem_in_two_folders_gives_two_entries(tmp_path: Path, cluster: ClusterConfig) -> None:
    for folder in ("a", "b"):
        lavfi_video(tmp_path / folder / "clip.mp4", pattern="testsrc2" if folder == "b" else "testsrc")
    manifest = Manifest([VideoRecord(f"{d}/clip", f"{d}/clip.mp4", "a") for d in "ab"], ["a"])
    run_decode(manifest=manifest, root=tmp_path, cache_path=tmp_path / "d.h5", reports_dir=tmp_path,
               cfg=CFG, cluster=cluster)
    with CacheReader(tmp_path / "d.h5") as cache:
        assert cache.ids() == ["a/clip", "b/clip"]
        assert not np.array_equal(cache.read("a/clip", "frames"), cache.read("b/clip", "frames"))
