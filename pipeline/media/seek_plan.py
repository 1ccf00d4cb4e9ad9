"""Which stretches of a video to decode, given the frames wanted and where the keyframes are.

A decoder can start only at a keyframe, so reaching frame f costs decoding from the keyframe at or
before f (the demuxer seeks to it exactly: pipeline/media/seek_decode.py).
Wanted frames are grouped into spans: a wanted frame joins the current span when no keyframe lies
between them, or when decoding on is cheaper than seeking again (`seek_cost` frames of overhead for
each more span). The plan is worth it only when its cost is below decoding every frame.
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


def decode_starts(frames: np.ndarray, keyframes: np.ndarray) -> np.ndarray:
    """Where decoding starts to reach each frame: the keyframe at or before it (frame 0 when none is)."""
    keyframes = np.asarray(keyframes, np.int64)
    if len(keyframes) == 0 or keyframes[0] > 0:
        keyframes = np.r_[0, keyframes]
    return keyframes[np.searchsorted(keyframes, frames, side="right") - 1]


def plan_spans(wanted: np.ndarray, keyframes: np.ndarray, seek_cost: int) -> tuple[list[Span], int]:
    """(spans, cost in decoded frames) covering the sorted unique `wanted` frame indices; decoding stops
    at the last wanted frame of each span."""
    wanted = np.asarray(wanted, np.int64)
    gop_start = decode_starts(wanted, keyframes)
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


def span_cost(span: Span, keyframes: np.ndarray) -> int:
    """Frames decoded for `span`: from the keyframe at or before its first frame to its last."""
    return span.first + span.count - int(decode_starts(np.array([span.first]), keyframes)[0])


def split_spans(spans: list[Span], keyframes: np.ndarray, parts: int) -> list[list[Span]]:
    """`spans` in at most `parts` consecutive groups of about equal decoding cost, one decoder each.

    A span may be cut at a keyframe k inside it: the first piece ends before k, the second starts on k,
    so the pieces decode what the whole did. Each group is closed greedily where it comes nearest to an
    equal share of what is left (at a span boundary or a cut); the last group takes the rest.
    """
    keyframes = np.asarray(keyframes, np.int64)
    queue = list(spans)
    groups: list[list[Span]] = [[]]
    load = 0
    while queue:
        span = queue.pop(0)
        cost = span_cost(span, keyframes)
        left = parts - len(groups) + 1
        target = (load + cost + sum(span_cost(s, keyframes) for s in queue)) / left
        if left == 1 or load + cost <= target:
            groups[-1].append(span)
            load += cost
            continue
        last = span.first + span.count - 1
        choices: list[tuple[float, Span | None, Span | None]] = [(abs(load + cost - target), span, None)]
        if groups[-1]:
            choices.append((abs(load - target), None, span))
        for k in keyframes[(keyframes > span.first) & (keyframes <= last)].tolist():
            head = Span(span.first, k - span.first)
            choices.append((abs(load + span_cost(head, keyframes) - target), head, Span(k, last - k + 1)))
        _, head, rest = min(choices, key=lambda choice: choice[0])
        if head is not None:
            groups[-1].append(head)
        if rest is not None:
            queue.insert(0, rest)
        groups.append([])
        load = 0
    return [group for group in groups if group]
