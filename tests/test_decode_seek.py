"""Decoding by input seeking (only keyframe-to-span stretches) must give exactly the one-pass frames."""

from __future__ import annotations

import numpy as np
import pytest

import pipeline.decode as decode
from pipeline.decode import DecodeConfig, _decode_frames, _FrameSink, _seek_plan, video_rng
from pipeline.media.ffmpeg_io import fit_size
from pipeline.media.probe import probe_video, video_packets
from pipeline.media.seek_plan import Span, keyframe_indices, plan_spans, span_cost, split_spans


def test_wanted_frames_in_one_gop_make_one_span_from_the_first_wanted() -> None:
    spans, cost = plan_spans(np.array([30, 31, 40]), np.array([0, 25, 50]), seek_cost=5)
    assert spans == [Span(30, 11)]
    assert cost == (40 - 25 + 1) + 5


def test_far_gops_get_their_own_span_and_near_ones_are_joined() -> None:
    keyframes = np.array([0, 100, 160, 300])
    spans, cost = plan_spans(np.array([10, 11, 150, 165, 320]), keyframes, seek_cost=10)
    assert spans == [Span(10, 2), Span(150, 16), Span(320, 1)]
    assert cost == (11 - 0 + 1 + 10) + (150 - 100 + 1 + 10) + (165 - 150) + (320 - 300 + 1 + 10)


def test_a_span_starting_on_a_keyframe_pays_from_the_keyframe_before() -> None:
    spans, cost = plan_spans(np.array([0, 50, 51]), np.array([0, 50, 100]), seek_cost=5)
    assert spans == [Span(0, 52)] and cost == 52 + 5      # frame 50 costs decoding on from frame 0
    spans, cost = plan_spans(np.array([100, 101]), np.array([0, 50, 100]), seek_cost=5)
    assert spans == [Span(100, 2)] and cost == (101 - 50 + 1) + 5


def test_a_first_keyframe_after_frame_zero_counts_as_frame_zero() -> None:
    spans, cost = plan_spans(np.array([3, 4]), np.array([12]), seek_cost=0)
    assert spans == [Span(3, 2)] and cost == 5


def test_keyframe_indices_are_relative_to_the_first_frame() -> None:
    np.testing.assert_array_equal(keyframe_indices(np.array([0.5, 1.5, 2.5]), 0.5, 25.0), [0, 25, 50])


def _frames(spans: list[Span]) -> list[int]:
    return [i for s in spans for i in range(s.first, s.first + s.count)]


def test_one_long_span_is_cut_after_a_keyframe_into_equal_shares() -> None:
    keyframes = np.arange(0, 1500, 250)
    groups = split_spans([Span(15, 1441)], keyframes, 2)
    assert groups == [[Span(15, 736)], [Span(751, 705)]]          # cut after the keyframe at 750
    assert _frames([s for g in groups for s in g]) == list(range(15, 1456))
    costs = [sum(span_cost(s, keyframes) for s in g) for g in groups]
    assert costs == [751, 706] and sum(costs) == span_cost(Span(15, 1441), keyframes) + 1  # frame 750 twice
    assert [len(g) for g in split_spans([Span(15, 1441)], keyframes, 3)] == [1, 1, 1]


def test_spans_are_grouped_in_order_and_cut_only_where_that_balances() -> None:
    keyframes = np.arange(0, 1000, 250)
    spans = [Span(10, 20), Span(300, 20), Span(600, 20), Span(900, 20)]     # costs 30, 70, 120, 170
    assert split_spans(spans, keyframes, 2) == [spans[:3], spans[3:]]
    assert split_spans(spans, keyframes, 1) == [spans]
    assert split_spans([Span(10, 20)], keyframes, 4) == [[Span(10, 20)]]     # no keyframe inside: whole


CFG = DecodeConfig(segments=2, frames_per_segment=4, train_views=1, face_rate=0.2,
                   outputs=("snippets", "frames"), work_max_side=160)


@pytest.mark.parametrize("kind", [
    {"preset": "ultrafast"},
    {"preset": "veryfast"},                           # B-frames: display order differs from decode order
    {"preset": "veryfast", "video_delay_s": 0.4},     # the video packets start 0.4 s in
])
def test_seek_route_gives_the_one_pass_frames(make_video, kind) -> None:
    path = make_video(seconds=12, size="160x120", pattern="testsrc2", gop=25, **kind)
    info = probe_video(path, packets=True)
    sink = _FrameSink(CFG, info.n_frames, info.fps, video_rng(0, "v"), fit_size(info.width, info.height, 160))
    plan = _seek_plan(path, info, info.fps, sink)
    assert plan is not None and len(plan[0]) > 1
    seek, n_seek = _decode_frames(path, info, CFG, info.fps, info.n_frames, "v", [], seek=True)
    one_pass, n_one = _decode_frames(path, info, CFG, info.fps, info.n_frames, "v", [], seek=False)
    assert n_seek == n_one == 300
    assert seek.keys() == one_pass.keys()
    for name in seek:
        np.testing.assert_array_equal(seek[name], one_pass[name], err_msg=name)


def test_a_plan_split_over_processes_gives_the_one_process_frames(make_video, monkeypatch) -> None:
    path = make_video(seconds=12, size="160x120", pattern="testsrc2", gop=25, preset="veryfast")
    info = probe_video(path, packets=True)
    launched: list[int] = []

    def counted(*args, **kwargs) -> None:      # the real decode, counting the ffmpeg processes started
        launched.append(kwargs["threads"])
        decode_streams(*args, **kwargs)
    decode_streams = decode.decode_streams
    monkeypatch.setattr(decode, "decode_streams", counted)
    monkeypatch.setattr(decode, "PART_MIN_FRAMES", 20)
    split, _ = _decode_frames(path, info, CFG, info.fps, info.n_frames, "v", [], threads=3)
    assert launched == [1, 1, 1]
    launched.clear()
    whole, _ = _decode_frames(path, info, CFG, info.fps, info.n_frames, "v", [], threads=1)
    assert launched == [1]
    assert split.keys() == whole.keys()
    for name in split:
        np.testing.assert_array_equal(split[name], whole[name], err_msg=name)


def test_packet_listing_reports_the_first_frame_and_the_keyframes(make_video) -> None:
    path = make_video(seconds=3, gop=25, video_delay_s=0.4, preset="veryfast")
    packets = video_packets(path)
    assert packets.first_pts == pytest.approx(0.4) and packets.start == pytest.approx(0.4)
    np.testing.assert_allclose(packets.keyframes, [0.4, 1.4, 2.4])
    listed = probe_video(path, packets=True)       # the same listing from the probe's own pass,
    assert listed.has_audio                        # the audio stream's packets left out
    assert listed.packets.start == packets.start and listed.packets.first_pts == packets.first_pts
    np.testing.assert_array_equal(listed.packets.keyframes, packets.keyframes)
    assert probe_video(path).packets is None and "packets" not in listed.as_row()


def test_no_seeking_when_an_output_needs_every_frame(make_video) -> None:
    path = make_video(seconds=4, gop=25)
    info = probe_video(path)
    cfg = DecodeConfig(segments=2, frames_per_segment=4, outputs=("snippets", "keyframes"))
    sink = _FrameSink(cfg, info.n_frames, info.fps, video_rng(0, "v"), (160, 120))
    assert _seek_plan(path, info, info.fps, sink) is None
