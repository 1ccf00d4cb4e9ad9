"""The decode stage's library entry point on a real LocalCluster: failures, resume, probe table."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path

from pipeline.cache import CacheReader
from pipeline.decode.config import DecodeConfig
from pipeline.decode.stage import run_decode
from pipeline.engine.cluster import ClusterConfig
from pipeline.manifests.format import Manifest, VideoRecord

CFG = DecodeConfig(segments=2, frames_per_segment=4, train_views=1, work_max_side=96, keyframe_size=32)


def manifest(names: list[str]) -> Manifest:
    return Manifest([VideoRecord(n.rsplit(".", 1)[0], n, n.split("/")[0]) for n in names], ["a", "b"])


def decode(tmp_path: Path, names: list[str]):
    return run_decode(manifest=manifest(names), root=tmp_path / "videos", cache_path=tmp_path / "decode.h5",
                      reports_dir=tmp_path / "reports", cfg=CFG, cluster=ClusterConfig(workers=2))


def test_failures_recorded_others_cached_then_only_new_videos_computed(tmp_path: Path, make_video) -> None:
    make_video("videos/a/same.mp4", seconds=1)
    make_video("videos/b/same.mp4", seconds=1, pattern="testsrc2", audio=False)
    (tmp_path / "videos/b/broken.mp4").write_bytes(b"\x00" * 1000)
    first = decode(tmp_path, ["a/same.mp4", "b/same.mp4", "b/broken.mp4", "a/missing.mp4"])
    assert first.counts() == {"total": 4, "done": 2, "skipped": 0, "failed": 2}
    with CacheReader(tmp_path / "decode.h5") as r:
        assert r.ids() == ["a/same", "b/same"]
        assert r.read("a/same", "snippets").shape == (2, 2, 4, 112, 112, 3)
        assert r.attrs("a/same")["has_audio"] and not r.attrs("b/same")["has_audio"]
        assert (r.read("a/same", "frames") != r.read("b/same", "frames")).any()
    failures = (tmp_path / "reports/decode_failures.csv").read_text()
    assert "broken.mp4" in failures and "missing.mp4,file not found" in failures
    summary = json.loads((tmp_path / "reports/decode_summary.json").read_text())
    assert summary["failed"] == 2

    make_video("videos/a/new.mp4", seconds=1)
    second = decode(tmp_path, ["a/same.mp4", "b/same.mp4", "b/broken.mp4", "a/missing.mp4", "a/new.mp4"])
    assert (second.done, second.skipped, second.failed) == (1, 2, 2)
    with (tmp_path / "reports/probe.csv").open() as f:
        rows = {row["video_id"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"a/same", "b/same", "b/broken", "a/missing", "a/new"}
    assert rows["a/same"]["status"] == "ok" and rows["a/same"]["vcodec"] == "h264"
    assert rows["b/broken"]["status"] == "failed" and rows["b/broken"]["error"]


def test_a_video_replaced_under_the_same_name_is_decoded_again(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    """Entries remember a fingerprint of the file they came from: a changed file is recomputed, an
    unchanged one is skipped even when its mtime changed."""
    make_video("a.mp4", seconds=1.0, size="64x48")
    make_video("b.mp4", seconds=1.0, size="64x48")
    manifest = Manifest([VideoRecord("a", "a.mp4", "x"), VideoRecord("b", "b.mp4", "x")], ["x"])
    cfg = DecodeConfig(segments=2, frames_per_segment=4, train_views=0, outputs=("snippets",))
    kwargs = {"manifest": manifest, "root": tmp_path, "cache_path": tmp_path / "decode.h5",
              "reports_dir": tmp_path / "reports", "cfg": cfg, "cluster": ClusterConfig(workers=1)}
    assert run_decode(**kwargs).done == 2
    os.utime(tmp_path / "b.mp4", ns=(1, 1))  # touched, not changed: still cached
    make_video("a.mp4", seconds=2.0, size="64x48")
    again = run_decode(**kwargs)
    assert (again.done, again.skipped) == (1, 1)
    with CacheReader(tmp_path / "decode.h5") as cache:
        assert cache.attrs("a")["duration_ms"] >= 1900


def test_entries_of_an_older_code_version_are_decoded_again(
    tmp_path: Path, make_video: Callable[..., Path], monkeypatch
) -> None:
    """The decode code's version is part of the configuration hash: a cache written by other code (other
    values for the same parameters) is recomputed, not reused."""
    import pipeline.decode.config as decode_config

    make_video("a.mp4", seconds=1.0, size="64x48")
    manifest = Manifest([VideoRecord("a", "a.mp4", "x")], ["x"])
    cfg = DecodeConfig(segments=2, frames_per_segment=4, train_views=0, outputs=("snippets",))
    kwargs = {"manifest": manifest, "root": tmp_path, "cache_path": tmp_path / "decode.h5",
              "reports_dir": tmp_path / "reports", "cfg": cfg, "cluster": ClusterConfig(workers=1)}
    monkeypatch.setattr(decode_config, "CODE_VERSION", decode_config.CODE_VERSION - 1)
    assert run_decode(**kwargs).done == 1
    monkeypatch.undo()
    again = run_decode(**kwargs)
    assert (again.done, again.skipped) == (1, 0)
