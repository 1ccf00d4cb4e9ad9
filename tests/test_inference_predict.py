"""`vemo predict` on real demo clips: decode, extractors and head in-process, the JSON, the pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from pipeline.cache import CacheWriter
from pipeline.cli import main
from pipeline.graph import cache_order, decode_outputs
from pipeline.report.pictures import MAX_TILES, draw_picture, picture_size
from pipeline.training.trained import load_trained

TOP_KEYS = {"checkpoint", "head", "key", "classes", "features", "random_weights", "config_check", "videos"}
VIDEO_KEYS = {"video", "video_id", "status", "predicted", "probability", "polarity", "top", "probabilities",
              "valid", "has_audio", "attention", "times_ms", "segments", "picture"}


def check_schema(summary: dict, classes: list[str]) -> None:
    assert set(summary) == TOP_KEYS and summary["classes"] == classes
    for row in summary["videos"]:
        if row["status"] != "ok":
            assert set(row) == {"video", "video_id", "status", "error"}
            continue
        assert set(row) == VIDEO_KEYS
        assert row["predicted"] == row["top"][0]["class"] and row["polarity"] in {"positive", "negative"}
        assert set(row["probabilities"]) == set(classes)
        assert abs(sum(row["probabilities"].values()) - 1) < 1e-4
        assert [t["probability"] for t in row["top"]] == sorted((t["probability"] for t in row["top"]),
                                                               reverse=True)
        for name, cells in row["segments"].items():
            assert len(cells) == len(row["attention"][name])
            assert all(c["start_ms"] < c["end_ms"] for c in cells)


def predict(run, head: str, clips: list[str | Path], out: Path, *extra: str) -> tuple[int, dict]:
    videos = [str(run.videos[c]) if isinstance(c, str) else str(c) for c in clips]
    code = main(["predict", *videos, "--head", head, "--checkpoint", str(run.checkpoint(head)), "--params",
                 str(run.params_path), "--out", str(out), *extra])
    return code, json.loads((out / "predictions.json").read_text())


def test_vaanet_predicts_a_demo_clip_and_one_without_audio_or_face(tiny_run, tmp_path: Path, capsys) -> None:
    code, summary = predict(tiny_run, "vaanet", [tiny_run.plain, tiny_run.bare], tmp_path)
    printed = capsys.readouterr().out
    assert code == 0
    check_schema(summary, ["anger", "joy"])
    assert "RANDOM WEIGHTS" in printed and summary["random_weights"]
    assert summary["features"] == {"mfcc_resnet18": "RANDOM WEIGHTS", "r3d101_conv5": "RANDOM WEIGHTS"}
    assert all(c["match"] for c in summary["config_check"].values()), "same params: same cache hashes"
    plain, bare = summary["videos"]
    for row in (plain, bare):
        assert f"1. {row['predicted']}" in printed and row["polarity"] in printed
        assert len(row["segments"]["temporal"]) == 2 and len(row["attention"]["spatial"][0]) == 16
        with Image.open(tmp_path / row["picture"]) as picture:
            assert picture.size == picture_size(2, 2)  # 2 segments; temporal and audio temporal bars
    assert plain["has_audio"] and not bare["has_audio"]
    assert bare["valid"] and not any(bare["attention"]["audio_temporal"]), "absent audio is masked"


def test_predict_gives_what_evaluate_gave_for_a_test_video(tiny_run, tmp_path: Path) -> None:
    """Only the test view and the needed outputs are decoded here: the same features, so the same scores."""
    _, summary = predict(tiny_run, "vaanet", [tiny_run.plain], tmp_path)
    evaluated = json.loads((tiny_run.report_dirs["vaanet"] / "predictions/run_00.json").read_text())
    expected = next(r for r in evaluated if r["video_id"] == tiny_run.plain)
    got = summary["videos"][0]
    for c in expected["probabilities"]:
        assert got["probabilities"][c] == pytest.approx(expected["probabilities"][c], abs=2e-3)
    np.testing.assert_allclose(got["attention"]["temporal"], expected["attention"]["temporal"], atol=2e-2)


def test_caan_scores_a_video_without_a_face_by_the_prior_and_boxes_faces(tiny_run, tmp_path: Path) -> None:
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video")
    code, summary = predict(tiny_run, "caan", [tiny_run.plain, tiny_run.bare, bad], tmp_path / "out")
    assert code == 1, "a failed video sets the exit status"
    check_schema(summary, ["anger", "joy"])
    plain, bare, failed = summary["videos"]
    assert failed["status"] == "failed" and str(bad) in failed["error"]
    assert plain["valid"] and sum(plain["attention"]["frame_scores"]) == pytest.approx(1, abs=1e-5)
    prior = load_trained(tiny_run.checkpoint("caan")).log_prior.softmax(0).tolist()
    assert not bare["valid"] and list(bare["probabilities"].values()) == pytest.approx(prior, abs=1e-5)
    with Image.open(tmp_path / "out" / plain["picture"]) as picture:
        assert picture.size == picture_size(len(plain["attention"]["frame_scores"]), 1)
    assert (tmp_path / "out" / bare["picture"]).is_file()


def test_a_different_cache_configuration_warns_and_strict_refuses(tiny_run, tmp_path: Path, capsys) -> None:
    params = yaml.safe_load(tiny_run.params_path.read_text())
    params["faces"]["margin"] = 0.5
    changed = tmp_path / "params.yaml"
    changed.write_text(yaml.safe_dump(params))
    args = ["predict", str(tiny_run.videos[tiny_run.plain]), "--head", "caan", "--checkpoint",
            str(tiny_run.checkpoint("caan")), "--params", str(changed), "--out", str(tmp_path / "out")]
    with pytest.raises(ValueError, match="differs from the one"):
        main([*args, "--strict"])
    assert main(args) == 0
    assert "WARNING" in capsys.readouterr().out
    summary = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert not any(c["match"] for c in summary["config_check"].values())


def test_the_plan_holds_exactly_the_chain_a_head_needs() -> None:
    vaanet = ("decode", "mfcc", "mfcc_resnet18", "r3d101_conv5")
    assert cache_order({"r3d101_conv5", "mfcc_resnet18"}) == vaanet
    assert cache_order({"vgg16_fc6"}) == ("decode", "faces", "vgg16_fc6")
    assert decode_outputs(cache_order({"r3d101_conv5", "mfcc_resnet18"})) == ("snippets", "audio")
    assert decode_outputs(cache_order({"vggface_fc6", "vgg16_fc6"})) == ("frames",)


def _decode_cache(path: Path, t: int, seconds: int) -> None:
    rng = np.random.default_rng(0)
    snippet_times = np.stack([np.arange(t) * 1000, np.arange(1, t + 1) * 1000], axis=1)
    second_times = np.stack([np.arange(seconds) * 1000, np.arange(1, seconds + 1) * 1000], axis=1)
    with CacheWriter(path, stage="decode", config={}, config_hash="x") as writer:
        writer.write("v", {"snippets": rng.integers(0, 255, (1, t, 4, 112, 112, 3), dtype=np.uint8),
                           "snippets_times_ms": snippet_times[None],
                           "keyframes": rng.integers(0, 255, (seconds, 256, 256, 3), dtype=np.uint8),
                           "keyframes_times_ms": second_times},
                     {"duration_ms": seconds * 1000, "has_audio": True})


def test_ten_and_lstm_pictures_mark_keyframes_and_thin_long_strips(tmp_path: Path) -> None:
    from pipeline.cache import CacheReader

    _decode_cache(tmp_path / "decode.h5", t=3, seconds=40)
    segments = [[0, 1000], [1000, 2000], [2000, 3000]]
    ten = {"video_id": "v", "probabilities": {"a": 0.4, "b": 0.6}, "predicted": "b",
           "times_ms": {"visual": segments, "audio": segments},
           "attention": {"temporal_visual": [0.0, 1.0, 0.8], "temporal_audio": [0.2, 1.0, 0.0],
                         "keyframes": [0.0, 1.0, 0.0]}}
    seconds = [[1000 * s, 1000 * (s + 1)] for s in range(40)]
    lstm = {**ten, "times_ms": {"visual": seconds},
            "attention": {"per_second": np.full((40, 2), 0.5).tolist()}}
    with CacheReader(tmp_path / "decode.h5") as decode:
        for head, record, tiles, bars in (("ten", ten, 3, 2), ("lstm_fusion", lstm, 40, 1)):
            path = draw_picture(head, record, decode, None, tmp_path / f"{head}.png", title=head)
            with Image.open(path) as picture:
                assert picture.size == picture_size(tiles, bars)
    assert picture_size(40, 1) == picture_size(MAX_TILES, 1), "at most MAX_TILES frames are drawn"
