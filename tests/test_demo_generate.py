"""The demo generator end to end on a small configuration: bytes, streams, lists, class cues, faces."""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from pipeline.demo import INFO_NAME, README_NAME, SAMPLE_RATE, generate_demo

SMALL = dict(
    classes=["anger", "joy", "sadness"], clips_per_class=3, min_seconds=1.0, max_seconds=2.0,
    width=160, height=120, no_audio_every=4, face_every=2, seed=7,
)


def make(folder: Path, **overrides) -> list:
    return generate_demo(folder / "videos", folder / "lists", **{**SMALL, **overrides})


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def decode_frames(path: Path, width: int, height: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """All frames as RGB uint8 (n, h, w, 3), optionally scaled to ``size`` = (w, h)."""
    kwargs = {"s": f"{size[0]}x{size[1]}"} if size else {}
    out, _ = (ffmpeg.input(str(path)).output("pipe:", format="rawvideo", pix_fmt="rgb24", **kwargs)
              .run(capture_stdout=True, quiet=True))
    w, h = size or (width, height)
    return np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)


def decode_audio(path: Path) -> np.ndarray:
    out, _ = (ffmpeg.input(str(path)).output("pipe:", format="f32le", ac=1, ar=SAMPLE_RATE)
              .run(capture_stdout=True, quiet=True))
    return np.frombuffer(out, np.float32)


def dominant_frequency(x: np.ndarray, segment: int = 4096) -> float:
    """Peak (80 Hz to 4 kHz) of the mean power spectrum of Hann-windowed segments."""
    frames = x[: len(x) // segment * segment].reshape(-1, segment) * np.hanning(segment)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(segment, 1 / SAMPLE_RATE)
    band = (freqs > 80) & (freqs < 4000)
    return float(freqs[band][np.argmax(power[band])])


def mean_hue(frames: np.ndarray) -> float:
    r, g, b = frames.reshape(-1, 3).mean(axis=0) / 255.0
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360.0


def leave_one_out_accuracy(values: list[float], labels: list[int], distance) -> float:
    """Nearest class centroid, each sample left out of its own class's centroid (centroid = mean)."""
    hits = 0
    for i, (v, y) in enumerate(zip(values, labels, strict=True)):
        centroids = {}
        for c in set(labels):
            others = [u for j, (u, z) in enumerate(zip(values, labels, strict=True)) if z == c and j != i]
            if others:
                centroids[c] = others
        best = min(centroids, key=lambda c: np.mean([distance(v, u) for u in centroids[c]]))
        hits += best == y
    return hits / len(values)


def hue_distance(a: float, b: float) -> float:
    return min(abs(a - b), 360.0 - abs(a - b))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, list, dict]:
    folder = tmp_path_factory.mktemp("demo")
    clips = make(folder)
    info = json.loads((folder / INFO_NAME).read_text(encoding="utf-8"))
    return folder, clips, info


def test_same_seed_gives_identical_bytes(demo, tmp_path):
    folder, _, _ = demo
    make(tmp_path / "again", workers=1)
    first, second = digests(folder), digests(tmp_path / "again")
    assert len(first) == 9 + 3 + 2
    assert first == second


def test_another_seed_gives_other_videos(demo, tmp_path):
    folder, clips, _ = demo
    make(tmp_path / "other", seed=8)
    first, other = digests(folder), digests(tmp_path / "other")
    videos = [f"videos/{c.path}" for c in clips]
    assert all(first[v] != other[v] for v in videos)


def test_streams_match_the_plan(demo):
    folder, clips, _ = demo
    for clip in clips:
        probe = ffmpeg.probe(str(folder / "videos" / clip.path))
        kinds = [s["codec_type"] for s in probe["streams"]]
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["pix_fmt"]) == ("h264", "yuv420p")
        assert (video["width"], video["height"]) == (clip.width, clip.height)
        assert Fraction(video["avg_frame_rate"]) == Fraction(clip.fps)
        assert int(video["nb_frames"]) == clip.n_frames
        assert kinds.count("audio") == int(clip.has_audio), clip.clip_id
        for audio in (s for s in probe["streams"] if s["codec_type"] == "audio"):
            assert (audio["codec_name"], int(audio["sample_rate"])) == ("aac", SAMPLE_RATE)
            assert abs(float(audio["duration"]) - clip.seconds) < 0.05


def test_plan_exercises_the_decoder(demo):
    _, clips, _ = demo
    assert {"25", "30", "30000/1001"} <= {c.fps for c in clips}
    assert any(c.width % 16 or c.height % 16 for c in clips)
    assert all(c.width % 2 == 0 and c.height % 2 == 0 for c in clips)
    assert [c.number for c in clips if not c.has_audio] == [4, 8]
    assert [c.number for c in clips if c.has_face] == [2, 4, 6, 8]
    assert all(SMALL["min_seconds"] - 0.07 <= c.seconds <= SMALL["max_seconds"] + 0.07 for c in clips)


def test_same_stem_in_two_classes_kept_apart(demo):
    folder, _, _ = demo
    pair = sorted(p.relative_to(folder / "videos").as_posix() for p in folder.rglob("clip_same.mp4"))
    assert pair == ["anger/clip_same.mp4", "joy/clip_same.mp4"]
    a, b = ((folder / "videos" / p).read_bytes() for p in pair)
    assert a != b


def test_split_lists_are_ucf_style(demo):
    folder, clips, _ = demo
    lists = folder / "lists"
    class_ind = (lists / "classInd.txt").read_text(encoding="utf-8")
    assert class_ind == "1 anger\n2 joy\n3 sadness"
    index = {name: int(i) for i, name in (line.split() for line in class_ind.splitlines())}
    train = (lists / "trainlist01.txt").read_text(encoding="utf-8")
    test = (lists / "testlist01.txt").read_text(encoding="utf-8")
    train_rows = [line.rsplit(" ", 1) for line in train.splitlines()]
    test_ids = test.splitlines()
    assert all(index[vid.split("/")[0]] == int(i) for vid, i in train_rows)
    train_ids = [vid for vid, _ in train_rows]
    on_disk = sorted(p.relative_to(folder / "videos").with_suffix("").as_posix()
                     for p in (folder / "videos").rglob("*.mp4"))
    assert sorted(train_ids + test_ids) == on_disk == sorted(c.clip_id for c in clips)
    for name in SMALL["classes"]:
        assert sum(v.startswith(name + "/") for v in train_ids) == 2
        assert sum(v.startswith(name + "/") for v in test_ids) == 1


def test_class_recoverable_from_pictures(demo):
    folder, clips, _ = demo
    hues = [mean_hue(decode_frames(folder / "videos" / c.path, c.width, c.height, (32, 24))) for c in clips]
    labels = [c.class_index for c in clips]
    assert leave_one_out_accuracy(hues, labels, hue_distance) == 1.0
    assert all(hue_distance(h, c.hue_deg) < 15 for h, c in zip(hues, clips, strict=True))


def test_class_recoverable_from_sound(demo):
    folder, clips, _ = demo
    voiced = [c for c in clips if c.has_audio]
    peaks = [dominant_frequency(decode_audio(folder / "videos" / c.path)) for c in voiced]
    for peak, clip in zip(peaks, voiced, strict=True):
        assert abs(peak - clip.pitch_hz) < 11, (clip.clip_id, peak, clip.pitch_hz)
    octaves = [math.log2(p) for p in peaks]
    labels = [c.class_index for c in voiced]
    assert leave_one_out_accuracy(octaves, labels, lambda a, b: abs(a - b)) == 1.0


def test_mtcnn_sees_faces_only_in_face_clips(demo):
    from facenet_pytorch import MTCNN
    from PIL import Image

    folder, clips, _ = demo
    detector = MTCNN(keep_all=True, device="cpu")
    face_clip = next(c for c in clips if c.has_face)
    plain_clip = next(c for c in clips if not c.has_face)
    for clip, expected in ((face_clip, True), (plain_clip, False)):
        frames = decode_frames(folder / "videos" / clip.path, clip.width, clip.height)
        picks = [Image.fromarray(frames[i]) for i in (0, len(frames) // 2, len(frames) - 1)]
        boxes, probs = detector.detect(picks)
        for b, p in zip(boxes, probs, strict=True):
            found = b is not None and float(np.max(np.asarray(p, dtype=float))) > 0.9
            assert found == expected, (clip.clip_id, p)


def test_info_and_readme_describe_the_data(demo):
    folder, clips, info = demo
    assert info["synthetic"] is True and info["classes"] == SMALL["classes"]
    rows = {row["clip_id"]: row for row in info["clips"]}
    assert list(rows) == [c.clip_id for c in clips]
    for clip in clips:
        row = rows[clip.clip_id]
        assert (folder / "videos" / row["path"]).is_file()
        facts = (row["label"], row["has_audio"], row["has_face"], row["fps"], row["width"], row["height"])
        assert facts == (clip.label, clip.has_audio, clip.has_face, clip.fps, clip.width, clip.height)
        assert row["pitch_hz"] == clip.pitch_hz and row["colour"].startswith("#")
    readme = (folder / README_NAME).read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme and "9 clips" in readme
