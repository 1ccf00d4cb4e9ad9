"""Which stretches of a video to decode, given the frames wanted and where the keyframes are.

A decoder can start only at a keyframe, so reaching frame f costs decoding from the keyframe before f:
strictly before, because ffmpeg is asked to seek half a frame ahead of f (so that f itself is never cut
by timestamp rounding), and its demuxer then lands on the keyframe at or before that time.
Wanted frames are grouped into spans: a wanted frame joins the current span when no keyframe lies
between them, or when decoding on is cheaper than seeking again (`seek_cost` frames of overhead for
each more input ffmpeg opens). The plan is worth it only when its cost is below decoding every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Span:
    """Frames [first, first + count) of the constant-rate sequence, decoded after seeking to `first`."""

    first: int
    count: int


def keyframe_indices(keyframe_pts: np.ndarray, first_pts: float, fps: float) -> np.ndarray:
    """Sorted frame indices of the keyframes, from their timestamps (s)."""
    return np.unique(np.round((np.asarray(keyframe_pts) - first_pts) * fps).astype(np.int64))


def plan_spans(wanted: np.ndarray, keyframes: np.ndarray, seek_cost: int) -> tuple[list[Span], int]:
    """(spans, cost in decoded frames) covering the sorted unique `wanted` frame indices; decoding stops
    at the last wanted frame of each span."""
    wanted = np.asarray(wanted, np.int64)
    keyframes = np.asarray(keyframes, np.int64)
    if len(keyframes) == 0 or keyframes[0] > 0:
        keyframes = np.r_[0, keyframes]
    gop_start = keyframes[np.maximum(np.searchsorted(keyframes, wanted, side="left") - 1, 0)]
    spans: list[list[int]] = []
    cost = 0
    for frame, start in zip(wanted.tolist(), gop_start.tolist(), strict=True):
        if spans and (start <= spans[-1][1] or start - spans[-1][1] <= seek_cost):
            cost += frame - spans[-1][1]
            spans[-1][1] = frame
        else:
            cost += frame - start + 1 + seek_cost
            spans.append([frame, frame])
    return [Span(first, last - first + 1) for first, last in spans], cost
