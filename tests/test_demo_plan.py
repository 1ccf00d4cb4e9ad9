"""Clip planning (cue factors, faces), the tone and the frame renderer of the demo generator, no encoding."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.demo import (
    SAMPLE_RATE,
    class_factors,
    class_hue,
    class_motion,
    class_pitch,
    face_look,
    factor_counts,
    plan_clips,
)
from pipeline.demo.audio import tone
from pipeline.demo.faces import CROPS, face_photo, face_sprite
from pipeline.demo.plan import AUDIO, BASE_PITCH_HZ, PLAN, VIDEO, clip_rng
from pipeline.demo.video import frames, make_scene

FULL = dict(
    classes=["anger", "joy", "sadness", "surprise"], clips_per_class=10, min_seconds=2.0, max_seconds=6.0,
    width=320, height=240, no_audio_every=7, no_face_every=5, cues="complementary", seed=0,
)


def test_full_plan_counts():
    clips = plan_clips(**FULL)
    assert len(clips) == 40
    assert [c.number for c in clips if not c.has_audio] == [7, 14, 21, 28, 35]
    assert [c.number for c in clips if not c.has_face] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert [c.number for c in clips if not c.has_audio and not c.has_face] == [35]
    for c in range(4):
        mine = [x for x in clips if x.class_index == c]
        assert [x.split for x in mine].count("test") == 3
        assert len({x.clip_id for x in mine}) == 10
        assert any(x.has_face for x in mine) and any(not x.has_face for x in mine)
    assert len({c.clip_id for c in clips}) == 40


def test_plan_is_seeded():
    assert plan_clips(**FULL) == plan_clips(**FULL)
    other = plan_clips(**{**FULL, "seed": 1})
    assert [c.hue_deg for c in other] != [c.hue_deg for c in plan_clips(**FULL)]


def test_adding_clips_keeps_existing_ones():
    few = plan_clips(**{**FULL, "clips_per_class": 4})
    many = {c.clip_id: c for c in plan_clips(**FULL)}
    kept = [c for c in few if c.clip_id in many]
    assert kept and all(c.pitch_hz == many[c.clip_id].pitch_hz for c in kept)


def plan(n: int, **overrides) -> list:
    return plan_clips(**{**FULL, "classes": [f"c{i}" for i in range(n)], "clips_per_class": 6, **overrides})


def nearest(values: list[float], x: float, circle: float | None = None) -> int:
    gaps = [min(abs(x - v), circle - abs(x - v)) if circle else abs(x - v) for v in values]
    return int(np.argmin(gaps))


def readings(clip, n: int) -> dict[str, object]:
    """What each cue alone says about a clip: the hue and pitch snapped to their factor's nearest value."""
    n_scene, n_sound = factor_counts(n)
    return {
        "hue": nearest([class_hue(v, n_scene) for v in range(n_scene)], clip.hue_deg, 360.0),
        "motion": clip.motion_deg,
        "pitch": nearest([np.log2(class_pitch(v, n_sound)) for v in range(n_sound)], np.log2(clip.pitch_hz)),
        "face": (clip.face_source, clip.face_mirrored),
    }


def best_accuracy(keys: list, labels: list[int]) -> float:
    """The best any rule reading only ``keys`` can do: the majority class of every key value."""
    hits = 0
    for key in set(keys):
        mine = [y for k, y in zip(keys, labels, strict=True) if k == key]
        hits += max(mine.count(y) for y in set(mine))
    return hits / len(labels)


@pytest.mark.parametrize(("n", "grid"), [(1, (1, 1)), (2, (1, 2)), (3, (2, 2)), (4, (2, 2)), (5, (3, 2)),
                                         (6, (3, 2)), (8, (4, 2)), (9, (3, 3)), (12, (4, 3)), (16, (4, 4))])
def test_factor_grid(n, grid):
    assert factor_counts(n) == grid
    pairs = [(f.scene, f.sound) for f in (class_factors(c, n, "complementary") for c in range(n))]
    assert len(set(pairs)) == n
    assert all(0 <= a < grid[0] and 0 <= b < grid[1] for a, b in pairs)


@pytest.mark.parametrize(("n", "scene_ceiling", "sound_ceiling"), [(4, 1 / 2, 1 / 2), (6, 1 / 2, 1 / 3)])
def test_one_cue_alone_is_not_enough_but_the_pair_is(n, scene_ceiling, sound_ceiling):
    clips = plan(n)
    labels = [c.class_index for c in clips]
    read = [readings(c, n) for c in clips]
    faces = [(r, c.class_index) for r, c in zip(read, clips, strict=True) if c.has_face]
    face_labels = [y for _, y in faces]
    assert best_accuracy([r["hue"] for r in read], labels) == pytest.approx(scene_ceiling)
    assert best_accuracy([r["motion"] for r in read], labels) == pytest.approx(scene_ceiling)
    assert best_accuracy([r["pitch"] for r in read], labels) == pytest.approx(sound_ceiling)
    assert best_accuracy([r["face"] for r, _ in faces], face_labels) == pytest.approx(sound_ceiling, abs=0.05)
    assert best_accuracy([(r["hue"], r["motion"]) for r in read], labels) == pytest.approx(scene_ceiling)
    assert best_accuracy([(r["hue"], r["pitch"]) for r in read], labels) == 1.0
    assert best_accuracy([(r["hue"], r["face"]) for r, _ in faces], face_labels) == 1.0


def test_the_face_shows_the_sound_factor():
    for n in (4, 9):
        clips = [c for c in plan(n) if c.has_face]
        looks = {(c.face_source, c.face_mirrored): c.sound for c in clips}
        assert len(looks) == factor_counts(n)[1]
        assert all(looks[(c.face_source, c.face_mirrored)] == c.sound for c in clips)
    assert [face_look(s) for s in range(5)] == [
        ("astronaut", False), ("camera", False), ("astronaut", True), ("camera", True), ("astronaut", False)]
    assert [c.face_mirrored for c in plan(4)] == [False] * 24


def test_redundant_cues_are_the_earlier_demo():
    """Hue, motion and pitch each carry the whole class, by the earlier demo's formulas and random draws."""
    clips = plan(4, cues="redundant")
    for clip in clips:
        c = clip.class_index
        rng = clip_rng(FULL["seed"], c, clip.index_in_class, PLAN)
        rng.uniform()  # the clip's length
        hue = (90.0 * c + 90.0 * rng.uniform(-0.15, 0.15)) % 360.0
        pitch = BASE_PITCH_HZ * 2.0 ** (c / 2) * 2.0 ** (0.5 * rng.uniform(-0.15, 0.15))
        assert (clip.hue_deg, clip.pitch_hz) == (round(hue, 3), round(pitch, 3))
        assert clip.motion_deg == (90.0 * c + 45.0) % 360.0
        assert (clip.scene, clip.sound, clip.face_mirrored) == (c, c, False)
    faces = [c for c in clips if c.has_face]
    assert all(c.face_source == ("astronaut", "camera")[c.number % 2] for c in faces)
    labels = [c.class_index for c in clips]
    assert best_accuracy([c.face_source for c in faces], [c.class_index for c in faces]) < 0.5
    assert best_accuracy([readings(c, 16)["hue"] for c in clips], labels) == 1.0


def test_both_modes_draw_the_same_random_numbers():
    """Only cue centres and spacings differ: every random draw is shared, the jitter in units of spacing."""
    for a, b in zip(plan(4), plan(4, cues="redundant"), strict=True):
        assert (a.n_frames, a.saturation, a.speed, a.snr_db, a.split, a.has_face) == (
            b.n_frames, b.saturation, b.speed, b.snr_db, b.split, b.has_face)
        hue_a = ((a.hue_deg - class_hue(a.scene, 2) + 180) % 360 - 180) / 180
        hue_b = ((b.hue_deg - class_hue(b.scene, 4) + 180) % 360 - 180) / 90
        assert hue_a == pytest.approx(hue_b, abs=1e-4)
        pitch_a = np.log2(a.pitch_hz / class_pitch(a.sound, 2))
        pitch_b = np.log2(b.pitch_hz / class_pitch(b.sound, 4)) * 2
        assert pitch_a == pytest.approx(pitch_b, abs=1e-4)


@pytest.mark.parametrize("n", [2, 4, 7, 8, 9])
@pytest.mark.parametrize("cues", ["complementary", "redundant"])
def test_jittered_cues_stay_nearest_their_factor(n, cues):
    for clip in plan(n, cues=cues):
        f = class_factors(clip.class_index, n, cues)
        hues = [class_hue(v, f.n_scene) for v in range(f.n_scene)]
        pitches = [np.log2(class_pitch(v, f.n_sound)) for v in range(f.n_sound)]
        assert nearest(hues, clip.hue_deg, 360.0) == f.scene == clip.scene
        assert nearest(pitches, np.log2(clip.pitch_hz)) == f.sound == clip.sound
        assert clip.motion_deg == class_motion(f.scene, f.n_scene)


@pytest.mark.parametrize(("k", "without"), [(0, []), (1, list(range(1, 13))), (5, [5, 10]), (13, [])])
def test_no_face_every(k, without):
    clips = plan(2, no_face_every=k)
    assert [c.number for c in clips if not c.has_face] == without
    assert all(c.face_source == "" and not c.face_mirrored for c in clips if not c.has_face)
    assert all(c.face_source in CROPS for c in clips if c.has_face)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        plan_clips(**{**FULL, "classes": ["a", "a"]})
    with pytest.raises(ValueError, match="without spaces"):
        plan_clips(**{**FULL, "classes": ["big anger", "joy"]})
    with pytest.raises(ValueError, match="min_seconds"):
        plan_clips(**{**FULL, "min_seconds": 3.0, "max_seconds": 2.0})
    with pytest.raises(ValueError, match="cues"):
        plan_clips(**{**FULL, "cues": "fused"})
    with pytest.raises(ValueError, match="no_face_every"):
        plan_clips(**{**FULL, "no_face_every": -1})


def test_tone_peaks_at_the_class_pitch():
    for clip in plan_clips(**FULL)[::5]:
        x = tone(clip, clip_rng(0, clip.class_index, clip.index_in_class, AUDIO))
        assert x.dtype == np.float32 and len(x) == round(clip.seconds * SAMPLE_RATE)
        assert 0.2 < np.max(np.abs(x)) <= 1.0
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
        freqs = np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)
        assert abs(freqs[np.argmax(spectrum)] - clip.pitch_hz) < 0.03 * clip.pitch_hz


def test_frames_have_the_planned_shape_and_move():
    clip = next(c for c in plan_clips(**FULL) if c.width % 16)
    rendered = list(frames(clip, clip_rng(0, clip.class_index, clip.index_in_class, VIDEO)))
    assert len(rendered) == clip.n_frames
    assert all(f.shape == (clip.height, clip.width, 3) and f.dtype == np.uint8 for f in rendered)
    assert np.abs(rendered[0].astype(int) - rendered[-1].astype(int)).mean() > 2


def test_face_photographs_load_offline():
    for name in CROPS:
        photo = face_photo(name)
        assert photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) >= 150


def test_mirrored_face_is_drawn_flipped():
    rgb, alpha = face_sprite("astronaut", 120)
    flipped, flipped_alpha = face_sprite("astronaut", 120, mirrored=True)
    np.testing.assert_array_equal(flipped, rgb[:, ::-1])
    np.testing.assert_array_equal(flipped_alpha, alpha)  # the oval is symmetric
    clip = next(c for c in plan(9) if c.face_mirrored)
    scene = make_scene(clip, clip_rng(0, clip.class_index, clip.index_in_class, VIDEO))
    drawn = scene.sprites[-1].rgb
    np.testing.assert_array_equal(drawn, face_sprite(clip.face_source, drawn.shape[0], mirrored=True)[0])
    assert np.abs(drawn - drawn[:, ::-1]).mean() > 5
