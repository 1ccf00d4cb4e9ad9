from __future__ import annotations

import numpy as np

from pipeline.media import keyframes, sampling


def test_centre_snippets_are_consecutive_and_centred() -> None:
    frames = sampling.snippet_frames(100, 4, 5, rng=None)
    assert frames.shape == (4, 5)
    assert np.all(np.diff(frames, axis=1) == 1)
    np.testing.assert_array_equal(frames[:, 0], [10, 35, 60, 85])


def test_random_snippets_stay_inside_their_segment() -> None:
    rng = np.random.default_rng(0)
    bounds = sampling.segment_bounds(300, 10)
    for _ in range(20):
        frames = sampling.snippet_frames(300, 10, 16, rng)
        assert np.all(frames[:, 0] >= bounds[:-1])
        assert np.all(frames[:, -1] < bounds[1:])


def test_short_video_loops_within_segment_and_never_overflows() -> None:
    frames = sampling.snippet_frames(25, 10, 16, rng=None)
    assert frames.shape == (10, 16)
    assert frames.max() <= 24
    np.testing.assert_array_equal(frames[0], [0, 1] * 8)
    assert np.all(sampling.snippet_frames(3, 10, 16, rng=None) <= 2)


def test_views_first_is_the_deterministic_test_view() -> None:
    a = sampling.snippet_views(200, segments=4, length=8, train_views=3, rng=np.random.default_rng(1))
    b = sampling.snippet_views(200, segments=4, length=8, train_views=3, rng=np.random.default_rng(2))
    assert len(a) == 4
    np.testing.assert_array_equal(a[0].frames, b[0].frames)
    assert a[0].crop == (0.5, 0.5) and not a[0].flip
    assert any(not np.array_equal(x.frames, y.frames) for x, y in zip(a[1:], b[1:], strict=True))


def test_face_frames_rate_and_cap() -> None:
    np.testing.assert_array_equal(sampling.face_frames(100, 25.0, 1.0, 10), [12, 37, 62, 87])
    assert len(sampling.face_frames(25 * 600, 25.0, 1.0, 64)) == 64
    np.testing.assert_array_equal(sampling.face_frames(3, 25.0, 1.0, 10), [2])


def test_second_slices_match_frame_to_second_rule() -> None:
    fps = 30000 / 1001
    slices = sampling.second_slices(100, fps)
    for s, (start, stop) in enumerate(slices):
        assert all(int(i // fps) == s for i in range(start, stop))
    assert slices[0, 0] == 0 and slices[-1, 1] == 100
    assert np.all(slices[1:, 0] == slices[:-1, 1])


def test_times_ms() -> None:
    np.testing.assert_array_equal(sampling.frame_times_ms(np.array([0, 25]), 25.0), [[0, 40], [1000, 1040]])
    np.testing.assert_array_equal(sampling.span_times_ms(np.array([[0, 1, 2], [1, 0, 1]]), 10.0),
                                  [[0, 300], [0, 200]])


def test_keyframe_is_nearest_to_mean_histogram() -> None:
    dark = np.full((8, 8, 3), 10, np.uint8)
    grey = np.full((8, 8, 3), 128, np.uint8)
    hists = np.stack([keyframes.rgb_histogram(f) for f in (dark, dark, grey)])
    assert keyframes.nearest_to_mean(hists) in (0, 1)
    assert hists[0].sum() == 3.0


def _picked(frames: list[np.ndarray], fps: float, held_bytes: int) -> tuple[list, list[int]]:
    picker = keyframes.SlicePicker(fps, held_bytes)
    scaled: list[int] = []

    def scale(frame: np.ndarray) -> np.ndarray:
        scaled.append(int(frame[0, 0, 0]))
        return frame * 2
    for i, frame in enumerate(frames):
        picker.add(i, frame, frame, scale, frame.nbytes)
    return picker.finish(), scaled


def test_one_keyframe_a_second_and_only_the_chosen_frames_are_scaled() -> None:
    # 2.5 fps: slices {0, 1, 2}, {3, 4}, {5}; in each, the odd one out is never the keyframe
    values = [10, 10, 200, 50, 50, 90]
    frames = [np.full((4, 4, 3), v, np.uint8) for v in values]
    picked, scaled = _picked(frames, 2.5, held_bytes=1 << 20)
    assert [i for i, _ in picked] == [0, 3, 5]
    assert [int(image[0, 0, 0]) for _, image in picked] == [20, 100, 180]
    assert scaled == [10, 50, 90]                       # one scale per slice
    # a budget of one frame: the others are scaled as they come, the keyframes are the same images
    tight, scaled = _picked(frames, 2.5, held_bytes=frames[0].nbytes)
    assert [i for i, _ in tight] == [0, 3, 5] and len(scaled) == 3 + 3
    for (_, a), (_, b) in zip(picked, tight, strict=True):
        np.testing.assert_array_equal(a, b)
