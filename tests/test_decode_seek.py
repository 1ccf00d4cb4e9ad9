"""Decoding by seeking (only keyframe-to-span stretches, only the pictures needed) must give exactly the
one-pass frames."""

from __future__ import annotations

import re
from pathlib import Path

import av
import numpy as np
import pytest

import pipeline.decode.video as decode
from pipeline.decode.config import DecodeConfig
from pipeline.decode.video import (
    SeekPlan,
    _decode_frames,
    _decode_plan,
    _FrameSink,
    _seek_plan,
    decode_video,
    video_rng,
)
from pipeline.errors import VideoError
from pipeline.media.ffmpeg_io import fit_size
from pipeline.media.probe import VideoInfo, probe_video, video_packets
from pipeline.media.seek_decode import decode_spans, disposable
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


def test_a_span_starting_on_a_keyframe_decodes_from_that_keyframe() -> None:
    spans, cost = plan_spans(np.array([0, 50, 51]), np.array([0, 50, 100]), seek_cost=5)
    assert spans == [Span(0, 1), Span(50, 2)] and cost == (1 + 5) + (2 + 5)
    spans, cost = plan_spans(np.array([100, 101]), np.array([0, 50, 100]), seek_cost=5)
    assert spans == [Span(100, 2)] and cost == 2 + 5


def test_a_first_keyframe_after_frame_zero_counts_as_frame_zero() -> None:
    spans, cost = plan_spans(np.array([3, 4]), np.array([12]), seek_cost=0)
    assert spans == [Span(3, 2)] and cost == 5


def test_keyframe_indices_are_relative_to_the_first_frame() -> None:
    np.testing.assert_array_equal(keyframe_indices(np.array([0.5, 1.5, 2.5]), 0.5, 25.0), [0, 25, 50])


def _frames(spans: list[Span]) -> list[int]:
    return [i for s in spans for i in range(s.first, s.first + s.count)]


def test_one_long_span_is_cut_at_a_keyframe_into_equal_shares() -> None:
    keyframes = np.arange(0, 1500, 250)
    groups = split_spans([Span(15, 1441)], keyframes, 2)
    assert groups == [[Span(15, 735)], [Span(750, 706)]]          # cut at the keyframe at 750
    assert _frames([s for g in groups for s in g]) == list(range(15, 1456))
    costs = [sum(span_cost(s, keyframes) for s in g) for g in groups]
    assert costs == [750, 706] and sum(costs) == span_cost(Span(15, 1441), keyframes)   # nothing twice
    assert [len(g) for g in split_spans([Span(15, 1441)], keyframes, 3)] == [1, 1, 1]


def test_spans_are_grouped_in_order_and_cut_only_where_that_balances() -> None:
    keyframes = np.arange(0, 1000, 250)
    spans = [Span(10, 20), Span(300, 20), Span(600, 20), Span(900, 20)]     # costs 30, 70, 120, 170
    assert split_spans(spans, keyframes, 2) == [spans[:3], spans[3:]]
    assert split_spans(spans, keyframes, 1) == [spans]
    assert split_spans([Span(10, 20)], keyframes, 4) == [[Span(10, 20)]]     # no keyframe inside: whole


CFG = DecodeConfig(segments=2, frames_per_segment=4, train_views=1, face_rate=0.2,
                   outputs=("snippets", "frames"), work_max_side=160)


def planned(path: Path, cfg: DecodeConfig = CFG) -> tuple[VideoInfo, _FrameSink, SeekPlan]:
    info = probe_video(path, packets=True)
    sink = _FrameSink(cfg, info.n_frames, info.fps, video_rng(0, "v"), fit_size(info.width, info.height, 160))
    plan = _seek_plan(path, info, info.fps, sink)
    assert plan is not None and len(plan.spans) > 1
    return info, sink, plan


@pytest.mark.parametrize("kind", [
    {"preset": "ultrafast"},
    {"preset": "veryfast"},                           # B-frames: display order differs from decode order
    {"preset": "veryfast", "video_delay_s": 0.4},     # the video packets start 0.4 s in
    {"preset": "veryfast", "rotate": 90},             # ffmpeg's autorotation, redone on the seeking route
    {"preset": "veryfast", "rotate": 180},
    {"preset": "veryfast", "rotate": 270},
    {"preset": "veryfast", "name": "clip.ts"},        # MPEG-TS: Annex B start codes, no index to seek by
])
def test_seek_route_gives_the_one_pass_frames(make_video, kind) -> None:
    path = make_video(seconds=12, size="160x120", pattern="testsrc2", gop=25, **kind)
    info, sink, plan = planned(path)
    _decode_plan(path, info.fps, sink.streams(count=False), plan, threads=1)
    assert sink.complete()                            # the seeking route itself, no fallback
    seek = sink.finish(info.n_frames)
    one_pass, n_one = _decode_frames(path, info, CFG, info.fps, info.n_frames, "v", [], seek=False)
    assert n_one == 300
    assert seek.keys() == one_pass.keys()
    for name in seek:
        np.testing.assert_array_equal(seek[name], one_pass[name], err_msg=name)


@pytest.mark.parametrize(("name", "preset", "skipped"), [
    ("clip.mp4", "ultrafast", False), ("clip.mp4", "veryfast", True), ("clip.ts", "veryfast", True)])
def test_unwanted_pictures_nothing_refers_to_are_not_decoded(make_video, name, preset, skipped) -> None:
    path = make_video(name, seconds=12, size="160x120", pattern="testsrc2", gop=25, preset=preset)
    info, sink, plan = planned(path)
    decoded = decode_spans(path, fps=info.fps, streams=sink.streams(count=False), spans=plan.spans,
                           keyframes=plan.keyframes, first_pts=plan.first_pts)
    cost = sum(span_cost(span, plan.keyframes) for span in plan.spans)
    assert sink.complete()
    assert (decoded < cost) if skipped else (decoded == cost)     # ultrafast: every picture a reference


def test_h264_pictures_are_disposable_only_when_every_slice_has_nal_ref_idc_zero() -> None:
    def unit(header: int) -> bytes:
        return len(b"..").to_bytes(4, "big") + bytes([header]) + b"."
    sei, b_slice, p_slice, idr = 0x06, 0x01, 0x41, 0x65
    assert disposable(unit(sei) + unit(b_slice), 4)
    assert not disposable(unit(b_slice) + unit(p_slice), 4)       # one reference slice is enough
    assert not disposable(unit(idr), 4) and not disposable(unit(sei), 4)
    start, long_start = b"\x00\x00\x01", b"\x00\x00\x00\x01"           # Annex B: start codes
    assert disposable(long_start + bytes([sei]) + b".." + start + bytes([b_slice]) + b"..", 0)
    assert not disposable(start + bytes([p_slice]) + b"..", 0)


def test_a_damaged_picture_on_the_seeking_route_falls_back_to_the_one_pass(make_video, monkeypatch) -> None:
    path = make_video(seconds=12, size="160x120", pattern="testsrc2", gop=25, preset="veryfast")
    cfg = DecodeConfig(segments=3, frames_per_segment=4, train_views=1, outputs=("snippets",))
    info, sink, plan = planned(path, cfg)
    with av.open(str(path)) as container:        # the keyframe the first span decodes from
        key = next(p for p in container.demux(video=0) if p.is_keyframe)
    data = bytearray(path.read_bytes())
    data[key.pos + key.size // 4: key.pos + key.size * 3 // 4] = bytes(key.size // 2)
    path.write_bytes(bytes(data))
    with pytest.raises(VideoError, match="seeking decode failed|damaged"):
        decode_spans(path, fps=info.fps, streams=sink.streams(count=False), spans=plan.spans,
                     keyframes=plan.keyframes, first_pts=plan.first_pts)
    seek = decode_video(path, "v", info, cfg)
    monkeypatch.setattr(decode, "_seek_plan", lambda *args: None)
    one_pass = decode_video(path, "v", info, cfg)
    def said(attrs: dict) -> dict:                  # ffmpeg's messages name its decoder's address
        return {**attrs, "warnings": re.sub(r"@ 0x[0-9a-f]+", "@", attrs["warnings"])}
    assert "decoding error" in one_pass.attrs["warnings"] and said(seek.attrs) == said(one_pass.attrs)
    for name in one_pass.arrays:
        np.testing.assert_array_equal(seek.arrays[name], one_pass.arrays[name], err_msg=name)


def test_a_plan_split_over_threads_gives_the_one_thread_frames(make_video, monkeypatch) -> None:
    path = make_video(seconds=12, size="160x120", pattern="testsrc2", gop=25, preset="veryfast")
    info = probe_video(path, packets=True)
    parts: list[int] = []

    def counted(*args, **kwargs) -> int:      # the real decode, counting the parts
        parts.append(len(kwargs["spans"]))
        return decode_spans(*args, **kwargs)
    monkeypatch.setattr(decode, "decode_spans", counted)
    monkeypatch.setattr(decode, "PART_MIN_FRAMES", 20)
    split, _ = _decode_frames(path, info, CFG, info.fps, info.n_frames, "v", [], threads=3)
    assert len(parts) == 3
    parts.clear()
    whole, _ = _decode_frames(path, info, CFG, info.fps, info.n_frames, "v", [], threads=1)
    assert len(parts) == 1
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


KEYFRAMES_CFG = DecodeConfig(segments=2, frames_per_segment=4, train_views=1, face_rate=0.5,
                             outputs=("snippets", "frames", "keyframes"), work_max_side=160, keyframe_size=64)


def _routes(path: Path, monkeypatch, cfg: DecodeConfig = KEYFRAMES_CFG,
            info: VideoInfo | None = None) -> tuple[dict, dict, list]:
    """(the in-process decode, the ffmpeg command's one pass, the keyframe pickers decode_spans got)."""
    info = info or probe_video(path, packets=True)
    picking: list = []

    def watched(*args, **kwargs) -> int:
        picking.append(kwargs.get("picking"))
        return decode_spans(*args, **kwargs)
    monkeypatch.setattr(decode, "decode_spans", watched)
    fps = cfg.fps or info.fps
    routed, n = _decode_frames(path, info, cfg, fps, decode._expected_frames(info, fps), "v", [], threads=1)
    one_pass, n_one = _decode_frames(path, info, cfg, fps, decode._expected_frames(info, fps), "v", [],
                                     seek=False)
    assert n == n_one and routed.keys() == one_pass.keys()
    for name in routed:
        np.testing.assert_array_equal(routed[name], one_pass[name], err_msg=name)
    return routed, one_pass, picking


@pytest.mark.parametrize("kind", [
    {"preset": "veryfast"},                                   # B-frames
    {"preset": "veryfast", "fps": "30000/1001"},              # slices of 29 and 30 frames
    {"preset": "veryfast", "video_delay_s": 0.4},
    {"preset": "veryfast", "rotate": 90},
    {"preset": "veryfast", "name": "clip.ts"},
])
def test_keyframes_decoded_in_process_are_the_one_pass_keyframes(make_video, monkeypatch, kind) -> None:
    path = make_video(seconds=5, size="160x120", pattern="testsrc2", gop=50, **kind)
    routed, _, picking = _routes(path, monkeypatch)
    assert len(picking) == 1 and picking[0] is not None         # the whole route, no fallback
    assert len(routed["keyframes"]) == 5 and len(set(routed["keyframes_index"] % 25)) > 1


def test_a_rate_the_file_does_not_have_is_left_to_ffmpegs_fps_filter(make_video, monkeypatch) -> None:
    path = make_video(seconds=3, size="160x120", pattern="testsrc2", gop=25)
    cfg = DecodeConfig(**{**KEYFRAMES_CFG.__dict__, "fps": 10.0})
    routed, _, picking = _routes(path, monkeypatch, cfg)
    assert picking == [] and len(routed["keyframes"]) == 3


def test_a_damaged_picture_on_the_whole_route_falls_back_to_the_one_pass(make_video, monkeypatch) -> None:
    path = make_video(seconds=4, size="160x120", pattern="testsrc2", gop=25, preset="veryfast")
    info = probe_video(path, packets=True)            # as listed, before the damage
    with av.open(str(path)) as container:
        key = next(p for p in container.demux(video=0) if p.is_keyframe)
    data = bytearray(path.read_bytes())
    data[key.pos + key.size // 4: key.pos + key.size * 3 // 4] = bytes(key.size // 2)
    path.write_bytes(bytes(data))
    _, _, picking = _routes(path, monkeypatch, info=info)
    assert len(picking) == 1                                  # tried, raised, then the one pass decoded
