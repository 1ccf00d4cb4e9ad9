"""Weakly-supervised detection: segments from attention, tIoU, AP / mAP on hand-built cases, the GT reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.evaluation.detection import (
    TIOUS,
    GroundTruthError,
    Segment,
    average_precision,
    detections_from_predictions,
    equal_segments_ms,
    keyframe_scores,
    mean_ap,
    read_ground_truth,
    segments_from_attention,
    temporal_iou,
)

SECONDS = equal_segments_ms(7000, 7)  # seven 1-second segments


def seg(start_s: float, end_s: float, score: float = 1.0, label: str | None = None) -> Segment:
    return Segment(start_s * 1000, end_s * 1000, score, label)


# --- segments from attention -------------------------------------------------------------------------


def test_equal_segments() -> None:
    assert equal_segments_ms(3000, 3).tolist() == [[0, 1000], [1000, 2000], [2000, 3000]]


def test_runs_above_threshold_become_segments_scored_by_their_mean() -> None:
    scores = [0.0, 0.8, 0.9, 0.1, 1.0, 0.75, 0.2]
    found = segments_from_attention(scores, SECONDS, thresholds=(0.7,))
    assert [(s.start_ms, s.end_ms) for s in found] == [(1000, 3000), (4000, 6000)]
    assert [s.score for s in found] == pytest.approx([0.85, 0.875])


def test_several_thresholds_keep_each_segment_once_with_its_best_score() -> None:
    scores = [0.0, 0.8, 0.9, 0.1, 1.0, 0.75, 0.2]
    found = segments_from_attention(scores, SECONDS, thresholds=(0.7, 0.74, 0.85), label="joy")
    spans = {(s.start_ms, s.end_ms): s.score for s in found}
    assert spans == pytest.approx(
        {(1000, 3000): 0.85, (4000, 6000): 0.875, (2000, 3000): 0.9, (4000, 5000): 1.0}
    )
    assert {s.label for s in found} == {"joy"}


def test_raw_scores_are_normalised_and_constant_scores_detect_nothing() -> None:
    found = segments_from_attention([2.0, 4.0, 6.0], SECONDS[:3], thresholds=(0.7,))
    assert [(s.start_ms, s.end_ms, s.score) for s in found] == [(2000, 3000, 1.0)]
    assert segments_from_attention([0.4] * 3, SECONDS[:3]) == []
    assert segments_from_attention([0.0] * 3, SECONDS[:3], thresholds=(0.5,)) == []


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="times_ms"):
        segments_from_attention([0.1, 0.2], SECONDS)


def test_keyframe_scores_reproduce_the_keyframe_rule() -> None:
    visual = np.array([0.0, 1.0, 0.8, 0.2, 0.75, 0.5])
    audio = np.array([1.0, 0.9, 0.0, 0.3, 0.7, 0.71])
    both = keyframe_scores(visual, audio)
    found = segments_from_attention(both, SECONDS[:6], thresholds=(0.7,), normalise=False)
    assert [(s.start_ms, s.end_ms) for s in found] == [(1000, 2000), (4000, 5000)]
    assert keyframe_scores(visual).tolist() == visual.tolist()


# --- tIoU --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ((0, 10), (0, 10), 1.0),
        ((0, 10), (0, 5), 0.5),
        ((0, 10), (5, 15), 5 / 15),
        ((0, 5), (5, 10), 0.0),  # touching
        ((0, 5), (6, 10), 0.0),  # disjoint
        ((2, 4), (0, 10), 0.2),  # contained
        ((3, 3), (3, 3), 0.0),  # empty union
    ],
)
def test_temporal_iou(a: tuple[float, float], b: tuple[float, float], expected: float) -> None:
    assert temporal_iou(seg(*a), seg(*b)) == pytest.approx(expected)
    assert temporal_iou(seg(*b), seg(*a)) == pytest.approx(expected)


def test_segment_rejects_reversed_times() -> None:
    with pytest.raises(ValueError, match="ends before"):
        Segment(10, 5)


# --- AP / mAP ----------------------------------------------------------------------------------------

GT = {"a": [seg(0, 10)], "b": [seg(0, 10)]}


def test_perfect_prediction_is_one_at_every_tiou() -> None:
    assert mean_ap({"a": [seg(0, 10, 0.9)], "b": [seg(0, 10, 0.3)]}, GT) == {t: 1.0 for t in TIOUS}


def test_half_right_case() -> None:
    # ranked: TP (a), FP (b, wrong place), TP (b): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1
    # all-point interpolation: 1/2 * 1 + 1/2 * 2/3 = 5/6
    preds = {"a": [seg(0, 10, 0.9)], "b": [seg(20, 30, 0.8), seg(0, 10, 0.7)]}
    assert average_precision(preds, GT, 0.5) == pytest.approx(5 / 6)
    # one of two found, ranked first: 1/2; ranked after a false positive: 1/2 * 1/2
    assert average_precision({"a": [seg(0, 10, 0.9)]}, GT, 0.5) == pytest.approx(0.5)
    assert average_precision({"a": [seg(0, 10, 0.5), seg(50, 60, 0.9)]}, GT, 0.5) == pytest.approx(0.25)


def test_tiou_threshold_is_inclusive_and_tolerates_rounding() -> None:
    preds = {"a": [seg(0, 5, 0.9)]}  # tIoU 0.5 with a's ground truth
    assert mean_ap(preds, {"a": GT["a"]}, tious=(0.4, 0.5, 0.6)) == {0.4: 1.0, 0.5: 1.0, 0.6: 0.0}
    rounded = {"v": [Segment(0.2, 0.3)]}  # tIoU 0.1, computed as 0.09999999999999998
    assert temporal_iou(rounded["v"][0], Segment(0.0, 1.0)) < 0.1
    assert average_precision(rounded, {"v": [Segment(0.0, 1.0)]}, 0.1) == 1.0


def test_a_ground_truth_segment_is_matched_once() -> None:
    preds = {"a": [seg(0, 10, 0.9), seg(0, 9, 0.8)]}
    # second detection of the same segment is a false positive: precision 1, 1/2 at recall 1, 1
    assert average_precision(preds, {"a": GT["a"]}, 0.5) == pytest.approx(1.0)
    assert average_precision({"a": [seg(0, 9, 0.9), seg(0, 10, 0.8)]}, {"a": GT["a"]}, 0.5) == 1.0
    two = {"a": [seg(0, 10), seg(0, 10)]}
    assert average_precision(
        {"a": [seg(0, 10, 0.9), seg(30, 40, 0.8), seg(0, 10, 0.7)]}, two, 0.5
    ) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_matching_takes_the_highest_tiou_ground_truth() -> None:
    gt = {"a": [seg(8, 20), seg(0, 10)]}
    preds = {"a": [seg(0, 10, 0.9), seg(10.5, 20, 0.8)]}
    # first-listed matching would give seg(0, 10) the ground truth (8, 20) (tIoU 0.1), leaving (10.5, 20)
    # unmatched; best-tIoU matching finds both
    assert average_precision(preds, gt, 0.1) == 1.0


def test_predictions_in_videos_without_ground_truth_are_false_positives() -> None:
    preds = {"x": [seg(0, 10, 0.9)], "a": [seg(0, 10, 0.8)], "b": [seg(0, 10, 0.7)]}
    # FP, TP, TP: precision 0, 1/2, 2/3 at recall 0, 1/2, 1 -> 1/2 * 2/3 + 1/2 * 2/3
    assert average_precision(preds, GT, 0.5) == pytest.approx(2 / 3)


def test_no_prediction_and_no_ground_truth() -> None:
    assert average_precision({}, GT, 0.5) == 0.0
    with pytest.raises(ValueError, match="ground-truth"):
        average_precision({"a": [seg(0, 1)]}, {"a": []}, 0.5)


def test_class_aware_mean_over_labels() -> None:
    gt = {"a": [seg(0, 10, label="joy")], "b": [seg(0, 10, label="fear")]}
    preds = {"a": [seg(0, 10, 0.9, "joy")], "b": [seg(0, 10, 0.8, "joy")]}
    # agnostic: both found; class-aware: joy 1.0 (the second joy detection comes after), fear 0.0
    assert mean_ap(preds, gt, tious=(0.5,)) == {0.5: 1.0}
    assert mean_ap(preds, gt, tious=(0.5,), class_aware=True) == {0.5: pytest.approx(0.5)}
    with pytest.raises(ValueError, match="label"):
        mean_ap({"a": [seg(0, 10, 0.9)]}, gt, class_aware=True)


# --- ground-truth reader ------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gt.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_ground_truth(tmp_path: Path) -> None:
    path = write(tmp_path, "video_id,start_s,end_s,label\nv1,0,1.5,joy\n\nv1,3,4,\nv2,0.25,2,fear\n")
    gt = read_ground_truth(path)
    assert gt == {
        "v1": [Segment(0, 1500, 1.0, "joy"), Segment(3000, 4000, 1.0, None)],
        "v2": [Segment(250, 2000, 1.0, "fear")],
    }
    plain = read_ground_truth(write(tmp_path, "\ufeffvideo_id,start_s,end_s\nv1,0,2\n"))
    assert plain == {"v1": [Segment(0, 2000)]}


@pytest.mark.parametrize(
    ("text", "line", "why"),
    [
        ("id,start,end\nv1,0,1\n", 1, "header"),
        ("", 1, "header"),
        ("video_id,start_s,end_s\nv1,0,1\nv1,zero,1\n", 3, "numbers"),
        ("video_id,start_s,end_s\nv1,2,1\n", 2, "start_s < end_s"),
        ("video_id,start_s,end_s\nv1,-1,1\n", 2, "start_s < end_s"),
        ("video_id,start_s,end_s\nv1,0,1,joy\n", 2, "expected 3 fields"),
        ("video_id,start_s,end_s,label\n,0,1,joy\n", 2, "empty video_id"),
    ],
)
def test_ground_truth_errors_name_file_and_line(tmp_path: Path, text: str, line: int, why: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(GroundTruthError, match=why) as err:
        read_ground_truth(path)
    assert f"{path}:{line}:" in str(err.value)


def test_detections_from_prediction_records_use_both_attentions_and_the_audio_spans() -> None:
    spans = [[0, 1000], [1000, 2000], [2000, 3000], [3000, 4000]]
    snippets = [[200, 700], [1200, 1700], [2200, 2700], [3200, 3700]]
    records = [
        {
            "video_id": "a",
            "attention": {"temporal_visual": [0.0, 0.9, 1.0, 0.2], "temporal_audio": [0.1, 1.0, 0.5, 0.0]},
            "times_ms": {"visual": snippets, "audio": spans},
        },
        {
            "video_id": "b",
            "attention": {"temporal_visual": [1.0, 0.8, 0.0, 0.0], "temporal_audio": [0.0] * 4},
            "times_ms": {"visual": snippets, "audio": spans},
        },
    ]
    found = detections_from_predictions(records, theta=0.7)
    # a: min(v, a) = [0, 0.9, 0.5, 0] -> only segment 1 reaches 0.7
    assert [(s.start_ms, s.end_ms) for s in found["a"]] == [(1000.0, 2000.0)]
    assert found["a"][0].score == pytest.approx(0.9)
    # b has no audio (all-zero audio attention): visual alone, segments 0-1 merged
    assert [(s.start_ms, s.end_ms) for s in found["b"]] == [(0.0, 2000.0)]
