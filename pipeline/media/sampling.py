"""Which frames each extractor needs, as index arithmetic on a constant-rate frame sequence.

Facts from the papers and the authors' code:
- snippets: T equal segments, k successive frames from each: a random position for training views, the
  centre for the test view; a segment shorter than k frames is loop-padded;
- keyframes: one per 1-second slice, the frame whose RGB histogram is nearest (L1) to the slice's mean;
- faces: frames sampled at a fixed rate for face detection, capped in number.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SnippetView:
    """One view of a video: frame indices (T, k), crop offset in [0, 1]^2, and horizontal flip."""

    frames: np.ndarray
    crop: tuple[float, float]
    flip: bool


def segment_bounds(n_frames: int, segments: int) -> np.ndarray:
    """(T + 1,) boundaries of T equal segments over n frames."""
    return (np.arange(segments + 1) * n_frames) // segments


def snippet_frames(n_frames: int, segments: int, length: int, rng: np.random.Generator | None) -> np.ndarray:
    """(T, k) frame indices; the centre of each segment when `rng` is None, a random start otherwise."""
    bounds = segment_bounds(n_frames, segments)
    rows = []
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        size = int(stop - start)
        if size >= length:
            slack = size - length
            offset = slack // 2 if rng is None else int(rng.integers(0, slack + 1))
            rows.append(start + offset + np.arange(length))
        else:
            rows.append(start + np.arange(length) % max(size, 1))
    return np.minimum(np.stack(rows), n_frames - 1)


def snippet_views(n_frames: int, *, segments: int, length: int, train_views: int,
                  rng: np.random.Generator) -> list[SnippetView]:
    """The deterministic test view first, then `train_views` random views (offsets, crops, flips)."""
    views = [SnippetView(snippet_frames(n_frames, segments, length, None), (0.5, 0.5), False)]
    for _ in range(train_views):
        frames = snippet_frames(n_frames, segments, length, rng)
        crop = (float(rng.random()), float(rng.random()))
        views.append(SnippetView(frames, crop, bool(rng.random() < 0.5)))
    return views


def face_frames(n_frames: int, fps: float, rate: float, max_frames: int) -> np.ndarray:
    """Frames at `rate` per second (centre of each interval), evenly thinned to at most `max_frames`."""
    duration = n_frames / fps
    count = max(1, int(duration * rate))
    times = (np.arange(count) + 0.5) / rate
    frames = np.unique(np.minimum((times * fps).astype(np.int64), n_frames - 1))
    if len(frames) > max_frames:
        frames = frames[np.linspace(0, len(frames) - 1, max_frames).round().astype(np.int64)]
    return frames


def second_slices(n_frames: int, fps: float) -> np.ndarray:
    """(S, 2) [first, stop) frame ranges of the 1-second slices; a last partial second is kept.

    Frame i belongs to slice floor(i / fps), so slice s starts at frame ceil(s * fps).
    """
    starts = np.unique(np.ceil(np.arange(0, n_frames / fps, 1.0) * fps).astype(np.int64))
    starts = starts[starts < n_frames]
    stops = np.append(starts[1:], n_frames)
    return np.stack([starts, stops], axis=1)


def _ms(frames: np.ndarray, fps: float) -> np.ndarray:
    return np.round(np.asarray(frames) * 1000.0 / fps).astype(np.int64)


def frame_times_ms(frames: np.ndarray, fps: float) -> np.ndarray:
    """(n, 2) start and end time in ms of single frames."""
    return np.stack([_ms(frames, fps), _ms(np.asarray(frames) + 1, fps)], axis=-1)


def span_times_ms(frames: np.ndarray, fps: float) -> np.ndarray:
    """(rows, 2) time span in ms of each row of frame indices: first frame start to last frame end."""
    frames = np.asarray(frames)
    return np.stack([_ms(frames.min(axis=1), fps), _ms(frames.max(axis=1) + 1, fps)], axis=-1)
