"""Clip planning, the tone and the frame renderer of the demo generator, without encoding anything."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.demo import SAMPLE_RATE, class_hue, class_motion, class_pitch, plan_clips
from pipeline.demo.audio import tone
from pipeline.demo.faces import CROPS, face_photo
from pipeline.demo.plan import AUDIO, VIDEO, clip_rng
from pipeline.demo.video import frames

FULL = dict(
    classes=["anger", "joy", "sadness", "surprise"], clips_per_class=10, min_seconds=2.0, max_seconds=6.0,
    width=320, height=240, no_audio_every=7, face_every=3, seed=0,
)


def test_full_plan_counts():
    clips = plan_clips(**FULL)
    assert len(clips) == 40
    assert [c.number for c in clips if not c.has_audio] == [7, 14, 21, 28, 35]
    assert sum(c.has_face for c in clips) == 13
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


@pytest.mark.parametrize("n", [2, 4, 7, 8])
def test_jittered_cues_stay_nearest_their_class(n):
    clips = plan_clips(**{**FULL, "classes": [f"c{i}" for i in range(n)], "clips_per_class": 6})
    hues = [class_hue(c, n) for c in range(n)]
    pitches = [class_pitch(c, n) for c in range(n)]
    for clip in clips:
        hue_gap = [min(abs(clip.hue_deg - h), 360 - abs(clip.hue_deg - h)) for h in hues]
        pitch_gap = [abs(np.log2(clip.pitch_hz / p)) for p in pitches]
        assert int(np.argmin(hue_gap)) == clip.class_index
        assert int(np.argmin(pitch_gap)) == clip.class_index
    assert len({class_motion(c, n) for c in range(n)}) == n


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="distinct"):
        plan_clips(**{**FULL, "classes": ["a", "a"]})
    with pytest.raises(ValueError, match="without spaces"):
        plan_clips(**{**FULL, "classes": ["big anger", "joy"]})
    with pytest.raises(ValueError, match="min_seconds"):
        plan_clips(**{**FULL, "min_seconds": 3.0, "max_seconds": 2.0})


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
