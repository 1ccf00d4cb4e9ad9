"""Weakly-supervised emotion detection: segments from temporal attention, scored by mAP at temporal IoU.

TEN (Zhang et al., CVPR 2023, Section 4.5 and Table 3, Ekman-6) localises "a list of emotion segment
predictions with the corresponding score for each prediction" and reports mAP at tIoU {0.1, ..., 0.5}.
The paper departs from the per-class mAP of action detection: a video's emotion may be evoked by several
kinds of content, so a detection is correct "only when its tIoU with the ground truth segment" passes the
threshold, whatever its class. Detection here is therefore **class-agnostic by default**: one AP over all
predictions of all videos. ``mean_ap(..., class_aware=True)`` gives the usual per-class mean instead, for
datasets whose ground truth has labels.

Choices where the paper is silent:

- Segments from attention (``segments_from_attention``): min-max normalise a video's T scores, keep the
  segments whose score is >= a threshold (TEN's keyframe rule, theta = 0.7, is the default), merge runs of
  consecutive kept segments into one detection spanning their times, and score it by the mean normalised
  score inside. Several thresholds may be given; a detection found at several thresholds is kept once,
  with its highest score. A constant score row has no peak and gives no detection.
- TEN's keyframes need both modalities' attention >= theta; ``keyframe_scores`` is their element-wise
  minimum, so thresholding it at theta (``normalise=False``) reproduces the keyframe mask exactly.
- Matching (ActivityNet / THUMOS): predictions of all videos are sorted by score (descending; ties keep
  their input order); each is a true positive when some not-yet-matched ground-truth segment of its
  video has tIoU >= the threshold (the one with the highest tIoU is taken), else a false positive. A tIoU
  equal to the threshold counts (1e-9 tolerance for floating-point rounding).
- AP is the area under the interpolated precision-recall curve, all-point interpolation (VOC 2010+ and the
  ActivityNet evaluation code): precision is replaced by its running maximum from the right, and summed
  over every recall step. No prediction gives AP 0; no ground truth at all is an error.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIOUS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)
ByVideo = Mapping[str, Sequence["Segment"]]
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Segment:
    """A time interval of a video in milliseconds; ``score`` ranks predictions, ``label`` is optional."""

    start_ms: float
    end_ms: float
    score: float = 1.0
    label: str | None = None

    def __post_init__(self) -> None:
        if not self.end_ms >= self.start_ms:
            raise ValueError(f"segment ends before it starts: {self.start_ms} ms > {self.end_ms} ms")


class GroundTruthError(ValueError):
    """A ground-truth file is malformed; the message names the file and line."""


def segments_from_attention(scores: Sequence[float] | np.ndarray,
                            times_ms: Sequence[Sequence[float]] | np.ndarray, *,
                            thresholds: Iterable[float] = (0.7,), normalise: bool = True,
                            label: str | None = None) -> list[Segment]:
    """Detections of one video from its per-segment attention.

    Args:
        scores: (T,) attention per segment (e.g. TEN's ``temporal_visual`` or ``keyframe_scores``).
        times_ms: (T, 2) start and end of each segment in milliseconds, in time order.
        thresholds: a segment is kept when its (normalised) score is >= a threshold; one pass per threshold.
        normalise: min-max normalise ``scores`` first (identity on TEN's already normalised A*).
        label: attached to every detection (the video's predicted class, for class-aware evaluation).
    Returns:
        detections, each spanning a run of consecutive kept segments, scored by the mean score inside.
    """
    s, times = np.asarray(scores, dtype=np.float64), np.asarray(times_ms, dtype=np.float64)
    if s.ndim != 1 or times.shape != (s.size, 2):
        raise ValueError(f"scores must be (T,) and times_ms (T, 2); got {s.shape} and {times.shape}")
    if normalise:
        s = min_max(s)
    best: dict[tuple[float, float], float] = {}
    for threshold in thresholds:
        for first, last in runs(s >= threshold):
            key = (float(times[first, 0]), float(times[last, 1]))
            best[key] = max(best.get(key, -np.inf), float(s[first:last + 1].mean()))
    return [Segment(start, end, score, label) for (start, end), score in best.items()]


def min_max(s: np.ndarray) -> np.ndarray:
    """(T,) -> (s - min) / (max - min); a constant row gives zeros (no peak, nothing detected above 0)."""
    span = s.max() - s.min() if s.size else 0.0
    return (s - s.min()) / span if span > 0 else np.zeros_like(s)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of consecutive True values in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), (np.flatnonzero(edges == -1) - 1).tolist(),
                    strict=True))


def keyframe_scores(visual: np.ndarray, audio: np.ndarray | None = None) -> np.ndarray:
    """TEN's keyframe evidence per segment: min(A*_v, A*_a), or A*_v without audio; (T,) each."""
    v = np.asarray(visual, dtype=np.float64)
    return v if audio is None else np.minimum(v, np.asarray(audio, dtype=np.float64))


def equal_segments_ms(duration_ms: float, num_segments: int) -> np.ndarray:
    """(T, 2) start and end of T equal segments covering [0, duration_ms] (the snippet sampling's split)."""
    edges = np.linspace(0.0, float(duration_ms), num_segments + 1)
    return np.stack([edges[:-1], edges[1:]], axis=1)


def temporal_iou(a: Segment, b: Segment) -> float:
    """Intersection over union of two time intervals; 0 when the union is empty."""
    inter = max(0.0, min(a.end_ms, b.end_ms) - max(a.start_ms, b.start_ms))
    union = (a.end_ms - a.start_ms) + (b.end_ms - b.start_ms) - inter
    return inter / union if union > 0 else 0.0


def average_precision(predictions: ByVideo, ground_truth: ByVideo, tiou: float) -> float:
    """AP of all predictions (video id -> detections) against the ground truth (video id -> segments)."""
    n_gt = sum(len(segs) for segs in ground_truth.values())
    if n_gt == 0:
        raise ValueError("average precision needs at least one ground-truth segment")
    flat = [(vid, seg) for vid, segs in predictions.items() for seg in segs]
    flat.sort(key=lambda item: -item[1].score)
    matched = {vid: [False] * len(segs) for vid, segs in ground_truth.items()}
    hits = np.array([match(seg, ground_truth.get(vid, ()), matched.get(vid, []), tiou) for vid, seg in flat],
                    dtype=np.float64)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    return interpolated_ap(precision, tp / n_gt)


def match(pred: Segment, gts: Sequence[Segment], matched: list[bool], tiou: float) -> bool:
    """Match ``pred`` to the unmatched ground truth of highest tIoU >= ``tiou``; marks it. True if matched."""
    best, best_iou = -1, -1.0
    for j, gt in enumerate(gts):
        iou = temporal_iou(pred, gt)
        if not matched[j] and iou >= tiou - TOLERANCE and iou > best_iou:
            best, best_iou = j, iou
    if best < 0:
        return False
    matched[best] = True
    return True


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated AP from precision and recall (N,) along the ranked predictions."""
    p = np.concatenate([[0.0], precision, [0.0]])
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    step = np.flatnonzero(r[1:] != r[:-1]) + 1
    return float(np.sum((r[step] - r[step - 1]) * p[step]))


def mean_ap(predictions_by_video: ByVideo, gt_by_video: ByVideo, tious: Iterable[float] = TIOUS, *,
            class_aware: bool = False) -> dict[float, float]:
    """{tIoU: mAP}. Class-agnostic (the paper's protocol): one AP over everything. Class-aware: the mean
    over the ground truth's labels of the AP of that label's predictions against that label's segments."""
    tious = tuple(tious)
    if not class_aware:
        return {t: average_precision(predictions_by_video, gt_by_video, t) for t in tious}
    labels = sorted({require_label(seg, "ground truth") for segs in gt_by_video.values() for seg in segs})
    if not labels:
        raise ValueError("average precision needs at least one ground-truth segment")
    for segs in predictions_by_video.values():
        for seg in segs:
            require_label(seg, "prediction")
    per_class = {c: (of_label(predictions_by_video, c), of_label(gt_by_video, c)) for c in labels}
    return {t: float(np.mean([average_precision(p, g, t) for p, g in per_class.values()])) for t in tious}


def require_label(seg: Segment, what: str) -> str:
    if seg.label is None:
        raise ValueError(f"class-aware detection needs a label on every {what} segment; {seg} has none")
    return seg.label


def of_label(by_video: ByVideo, label: str) -> dict[str, list[Segment]]:
    return {vid: [s for s in segs if s.label == label] for vid, segs in by_video.items()}


def read_ground_truth(path: str | Path) -> dict[str, list[Segment]]:
    """Ground-truth segments from a CSV with header ``video_id,start_s,end_s`` (+ optional ``label``).

    One row per segment, times in seconds (returned in milliseconds). Blank lines are skipped.
    Raises GroundTruthError naming the file and line for a bad header, a missing or extra field, a time
    that is not a number, a negative start, or an end not after the start.
    """
    path = Path(path)
    out: dict[str, list[Segment]] = {}
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = csv.reader(f)
        header = [h.strip() for h in next(rows, [])]
        if header not in (["video_id", "start_s", "end_s"], ["video_id", "start_s", "end_s", "label"]):
            raise GroundTruthError(f"{path}:1: header must be video_id,start_s,end_s[,label]; got {header}")
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            vid, seg = parse_row(row, len(header), f"{path}:{rows.line_num}")
            out.setdefault(vid, []).append(seg)
    return out


def parse_row(row: list[str], width: int, where: str) -> tuple[str, Segment]:
    """One CSV row -> (video id, Segment in ms); ``where`` is "file:line" for the error message."""
    if len(row) != width:
        raise GroundTruthError(f"{where}: expected {width} fields, got {len(row)}: {row}")
    vid = row[0].strip()
    if not vid:
        raise GroundTruthError(f"{where}: empty video_id")
    try:
        start, end = float(row[1]), float(row[2])
    except ValueError:
        raise GroundTruthError(f"{where}: start_s and end_s must be numbers; got {row[1]!r}, {row[2]!r}"
                               ) from None
    if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end <= start:
        raise GroundTruthError(f"{where}: need 0 <= start_s < end_s; got {start}, {end}")
    label = (row[3].strip() or None) if width == 4 else None
    return vid, Segment(start * 1000.0, end * 1000.0, 1.0, label)


def detections_from_predictions(records: Iterable[dict], theta: float = 0.7) -> dict[str, list[Segment]]:
    """Detections of every test video from the evaluate stage's prediction records (TEN): keyframe evidence
    min(A*_v, A*_a) (visual only where the audio attention is all zero: no audio track) thresholded at
    `theta`, on the segments' time spans (the audio rows' equal spans when cached, else the snippets')."""
    out = {}
    for rec in records:
        attention, times = rec["attention"], rec["times_ms"]
        if "temporal_visual" not in attention:
            raise ValueError("detection needs a head that saves temporal_visual attention (ten)")
        audio = np.asarray(attention.get("temporal_audio", []), dtype=np.float64)
        scores = keyframe_scores(attention["temporal_visual"], audio if audio.any() else None)
        spans = times.get("audio") if len(times.get("audio", [])) == len(scores) else times["visual"]
        out[rec["video_id"]] = segments_from_attention(scores, spans, thresholds=(theta,), normalise=False)
    return out
