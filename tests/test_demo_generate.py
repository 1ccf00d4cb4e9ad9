"""The demo generator end to end on a small configuration: bytes, streams, lists, cue factors, faces."""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import ffmpeg
import numpy as np
import pytest

from pipeline.demo import INFO_NAME, README_NAME, SAMPLE_RATE, generate_demo, plan_clips
from pipeline.demo.plan import VIDEO, class_pitch, clip_rng
from pipeline.demo.video import frames

SMALL = dict(
    classes=["anger", "joy", "sadness"], clips_per_class=3, min_seconds=1.0, max_seconds=2.0,
    width=160, height=120, no_audio_every=4, no_face_every=3, cues="complementary", seed=7,
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
    """Peak (80 Hz to 20 kHz) of the mean power spectrum of Hann-windowed segments."""
    frames = x[: len(x) // segment * segment].reshape(-1, segment) * np.hanning(segment)
    power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(axis=0)
    freqs = np.fft.rfftfreq(segment, 1 / SAMPLE_RATE)
    band = (freqs > 80) & (freqs < 20000)
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
def demo(module_tmp: Callable[[str], Path]) -> tuple[Path, list, dict]:
    folder = module_tmp("demo")
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
    assert [c.number for c in clips if not c.has_face] == [3, 6, 9]
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


def picture_hues(folder: Path, clips: list) -> list[float]:
    return [mean_hue(decode_frames(folder / "videos" / c.path, c.width, c.height, (32, 24))) for c in clips]


def test_pictures_show_the_scene_not_the_class(demo):
    folder, clips, _ = demo
    hues = picture_hues(folder, clips)
    assert leave_one_out_accuracy(hues, [c.scene for c in clips], hue_distance) == 1.0
    assert all(hue_distance(h, c.hue_deg) < 15 for h, c in zip(hues, clips, strict=True))
    # anger and joy share scene 0: the picture's colour cannot tell them apart
    assert {c.scene for c in clips if c.label in ("anger", "joy")} == {0}
    assert leave_one_out_accuracy(hues, [c.class_index for c in clips], hue_distance) < 1.0


def test_sound_shows_the_sound_factor_and_the_pair_the_class(demo):
    folder, clips, _ = demo
    voiced = [c for c in clips if c.has_audio]
    peaks = [dominant_frequency(decode_audio(folder / "videos" / c.path)) for c in voiced]
    for peak, clip in zip(peaks, voiced, strict=True):
        assert abs(peak - clip.pitch_hz) < 0.05 * clip.pitch_hz, (clip.clip_id, peak, clip.pitch_hz)
    octaves = [math.log2(p) for p in peaks]
    assert leave_one_out_accuracy(octaves, [c.sound for c in voiced], lambda a, b: abs(a - b)) == 1.0
    # the decoded pitch (low or high) and the decoded hue (red or cyan) together name the class
    hues = picture_hues(folder, voiced)
    middle = (math.log2(class_pitch(0, 2)) + math.log2(class_pitch(1, 2))) / 2  # between the two sounds
    pairs = [(int(o > middle), int(hue_distance(h, 180.0) < 90))
             for o, h in zip(octaves, hues, strict=True)]
    assert pairs == [(c.sound, c.scene) for c in voiced]
    assert len({p: c.class_index for p, c in zip(pairs, voiced, strict=True)}) == len(SMALL["classes"])


@pytest.fixture(scope="module")
def detector():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, device="cpu")


def face_found(detector, pictures: list[np.ndarray]) -> list[bool]:
    """Whether MTCNN finds a face (probability > 0.9) in each picture; one call per picture size."""
    from PIL import Image

    found = {}
    for shape in {p.shape for p in pictures}:
        index = [i for i, p in enumerate(pictures) if p.shape == shape]
        boxes, probs = detector.detect([Image.fromarray(pictures[i]) for i in index])
        for i, b, p in zip(index, boxes, probs, strict=True):
            found[i] = b is not None and float(np.max(np.asarray(p, dtype=float))) > 0.9
    return [found[i] for i in range(len(pictures))]


def test_mtcnn_sees_faces_exactly_in_face_clips(demo, detector):
    folder, clips, _ = demo
    assert {c.has_face for c in clips} == {True, False}
    middles = []
    for clip in clips:
        frames = decode_frames(folder / "videos" / clip.path, clip.width, clip.height)
        middles.append(frames[len(frames) // 2])
    assert face_found(detector, middles) == [c.has_face for c in clips]


def test_mtcnn_sees_the_mirrored_face(detector):
    """With 9 classes (3 sound values) sound 2 shows the astronaut mirrored; it must still be a face."""
    nine = {**SMALL, "classes": [f"c{i}" for i in range(9)], "clips_per_class": 1, "no_face_every": 0}
    clip = next(c for c in plan_clips(**nine) if c.face_mirrored)
    first = next(frames(clip, clip_rng(SMALL["seed"], clip.class_index, clip.index_in_class, VIDEO)))
    assert face_found(detector, [first]) == [True]


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
        assert (row["scene"], row["sound"], row["face_mirrored"]) == (clip.scene, clip.sound, False)
    assert info["params"]["cues"] == "complementary" and info["params"]["no_face_every"] == 3
    readme = (folder / README_NAME).read_text(encoding="utf-8")
    assert "SYNTHETIC" in readme and "9 clips" in readme and "Cues: complementary" in readme
    assert "6 clips show a real photographed face" in readme
