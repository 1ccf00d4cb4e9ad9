from __future__ import annotations

import numpy as np
import pytest

from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import decode_video
from pipeline.errors import VideoError
from pipeline.media.probe import probe_video

CFG = DecodeConfig(segments=4, frames_per_segment=8, train_views=2, face_rate=2.0, face_max_frames=5,
                   keyframe_size=64, work_max_side=160, audio_rates=(44100, 16000))


def decode(path, video_id="v", cfg=CFG):
    return decode_video(path, video_id, probe_video(path), cfg)


def test_shapes_dtypes_and_times(make_video) -> None:
    out = decode(make_video(seconds=3, fps="30000/1001", size="322x242"))
    a = out.arrays
    assert a["snippets"].shape == (3, 4, 8, 112, 112, 3) and a["snippets"].dtype == np.uint8
    assert a["snippets_times_ms"].shape == (3, 4, 2)
    assert np.all(np.diff(a["snippets_times_ms"][0, :, 0]) > 0)
    assert a["frames"].shape == (5, 120, 160, 3)
    assert a["keyframes"].shape == (3, 64, 64, 3)
    np.testing.assert_array_equal(a["keyframes_times_ms"], [[0, 1001], [1001, 2002], [2002, 3003]])
    assert a["audio_44100"].dtype == np.int16
    assert len(a["audio_44100"]) == pytest.approx(3 * 44100, rel=0.02)
    assert len(a["audio_16000"]) == pytest.approx(3 * 16000, rel=0.02)
    assert out.attrs["has_audio"] and out.attrs["n_frames"] == 90
    assert out.attrs["source_fps"] == pytest.approx(30000 / 1001)


def test_snippets_show_the_right_frames(make_video) -> None:
    """testsrc draws a moving pattern: the centre test view must equal frames decoded independently."""
    path = make_video(seconds=2, fps="25", size="112x112", pattern="testsrc2")
    out = decode(path, cfg=DecodeConfig(segments=2, frames_per_segment=4, train_views=0,
                                        outputs=("snippets", "frames"), face_rate=25.0, face_max_frames=50))
    all_frames = out.arrays["frames"]
    test_view = out.arrays["snippets"][0]
    np.testing.assert_array_equal(test_view[0], all_frames[10:14])
    np.testing.assert_array_equal(test_view[1], all_frames[35:39])


def test_no_audio_is_recorded_not_fatal(make_video) -> None:
    out = decode(make_video(audio=False))
    assert not out.attrs["has_audio"]
    assert not any(k.startswith("audio") for k in out.arrays)
    assert "no audio" in out.attrs["warnings"]


def test_clip_shorter_than_t_times_k(make_video) -> None:
    out = decode(make_video(seconds=0.2, fps="25"))
    assert out.attrs["n_frames"] == 5
    assert out.arrays["snippets"].shape == (3, 4, 8, 112, 112, 3)
    assert out.arrays["keyframes"].shape[0] == 1


def test_rotation_is_applied(make_video) -> None:
    out = decode(make_video(size="160x96", rotate=90), cfg=DecodeConfig(outputs=("frames",)))
    assert out.arrays["frames"].shape[1:] == (160, 96, 3)


def test_same_seed_same_views_other_seed_other_views(make_video) -> None:
    path = make_video(seconds=3)
    a, b = decode(path), decode(path)
    c = decode(path, cfg=DecodeConfig(**{**CFG.__dict__, "seed": 7}))
    for name in a.arrays:
        np.testing.assert_array_equal(a.arrays[name], b.arrays[name])
    np.testing.assert_array_equal(a.arrays["snippets"][0], c.arrays["snippets"][0])
    assert not np.array_equal(a.arrays["snippets_times_ms"][1:], c.arrays["snippets_times_ms"][1:])


def test_invalid_video_raises_video_error_naming_file(tmp_path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(VideoError, match="bad.mp4"):
        decode(bad)
