"""Decode one video into exactly what the extractors need, in one pass of ffmpeg (or by seeking).

    every frame (rotation applied, constant fps) ── select + scale per output:
      ├─> snippet frames (T x k per view), short side 112 (area) ── cropped 112x112 here ─> snippets
      ├─> frames for face detection (`face_rate` a second, at most `face_max_frames`), working size
      │                                                                                      ─> frames
      └─> only when keyframes are asked for: every frame's 32x32 sample grid ── RGB histogram; per
          1-second slice the frame nearest to the mean, scaled to 256x256 (area) ─> keyframes
    ffmpeg (audio) ── mono int16 PCM at each rate in `audio_rates` ─> audio_<rate>

Three routes give the same frames (tests/test_decode_seek.py); the first that applies is taken:
- seeking: without a keyframes output, a constant-rate stream is decoded by seeking when that decodes
  fewer frames (`_seek_plan`, pipeline/media/seek_plan.py), in-process, skipping the pictures no wanted
  frame needs (pipeline/media/seek_decode.py). Given more than one thread, the plan is split into that
  many parts of equal decoding cost (`split_spans`), decoded side by side on one thread each: on 2
  cores that beats one decoder on 2 threads, which must restart its frame threads at every seek
  (bench/README.md, deliverable 2);
- one pass in-process: the same kind of stream with keyframes asked for is decoded whole by that
  decoder, which keeps each second's decoded frames until the second's keyframe is chosen, so only
  that one is scaled to 256x256 (1.45-1.65x the cost of decoding alone on one thread, against 2.5-2.8x
  when ffmpeg scales every frame: bench/README.md, issue 25);
- one pass of the ffmpeg command: any other stream (a variable rate, `decode.fps`, an edit list), and
  whenever an in-process route meets anything unexpected; ffmpeg's `fps` filter makes the rate constant.

Memory: snippets and face frames are bounded whatever the video length (only selected frames, already
downscaled, are held, and one second of decoded frames: at most 256 MB, `keyframes.HELD_BYTES`);
keyframes (one per second, 196 kB each at 256x256) and audio (88 kB per second per rate) grow with the
duration, about 1 GB an hour at the defaults, so `max_seconds` rejects longer videos before anything
decodes (docs/reliability.md: 2 hours decode in seconds).

Every time and every audio sample is on one clock, t = 0 at the first video frame, and it runs until the
later stream ends, as a player shows the file: audio that starts later or ends sooner is padded with
silence, audio before the first frame is cut, and while audio goes on after the last frame that frame is
held (docs/decoding.md).

Warnings recorded in the entry (`warnings` attribute) and the probe table: no audio stream, a variable
frame rate (resampled), several video or audio streams (which one is decoded), HDR without tone
mapping, interlaced video (not deinterlaced), NaN or inf audio samples (silenced), streams that start more
than 100 ms apart, fewer frames than the duration promises
(a cut or damaged stream), anything ffmpeg complained about while decoding, a picture that changes
size mid-stream, a video shorter than one
snippet (its frames are repeated).

Entry layout written to the decode cache (per video):
    snippets            uint8 (V, T, k, S, S, 3)   V views: index 0 the centre test view, then train views
    snippets_times_ms   int64 (V, T, 2)            start/end of each snippet
    snippets_flip       bool  (V,)                 train views flipped horizontally (already applied)
    frames              uint8 (F, h, w, 3)         frames for face detection, at the working size
    frames_times_ms     int64 (F, 2)
    keyframes           uint8 (K, 256, 256, 3)     one per second (the last partial second included)
    keyframes_times_ms  int64 (K, 2)
    audio_<rate>        int16 (n,)                 only when the file has a decodable audio stream;
                                                   n = n_frames / fps x rate, within 100 ms
    attrs: source_fps, fps, n_frames (of the timeline, held ones included), held_frames (the last frame
           repeated while the audio goes on), duration_ms, width, height, rotation, has_audio,
           audio_offset_ms (the audio's start minus the video's in the file), warnings
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from pipeline.cache.packed import PackedEntry
from pipeline.decode.config import DecodeConfig
from pipeline.errors import VideoError
from pipeline.media import keyframes as kf
from pipeline.media import sampling
from pipeline.media.ffmpeg_io import FrameStream, KeyframeStream, decode_streams, fit_size, read_audio
from pipeline.media.probe import START_TOLERANCE, VFR_WARNING, VideoInfo, may_hold_nonfinite, video_packets
from pipeline.media.resize import crop, short_side_size
from pipeline.media.seek_decode import AUTOROTATE, decode_spans
from pipeline.media.seek_plan import Span, keyframe_indices, plan_spans, span_cost, split_spans

SHORT_STREAM = 0.9                    # decoded (or counted) frames below this share of duration x fps
SEEK_COST_FRAMES = 3                  # a new span costs about this many pictures more than it counts: the
                                      # references after its last frame and the decoder's reorder delay (4
                                      # decoded for a one-frame span after a keyframe, x264 defaults); the
                                      # seek itself is an index lookup (bench/README.md, deliverable 2)
PART_MIN_FRAMES = 25                  # a seeking plan is split only into parts decoding at least this many
                                      # frames: opening the file and the filters for a part takes about 7 ms,
                                      # 8 pictures of 360p


@dataclass
class Decoded:
    arrays: dict[str, np.ndarray] | PackedEntry = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


def video_rng(seed: int, video_id: str) -> np.random.Generator:
    """A generator that depends only on the seed and the video id (not on processing order)."""
    digest = int.from_bytes(hashlib.sha256(video_id.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


class _FrameSink:
    """Collects the frames each output needs, from the ffmpeg streams that deliver them at their size."""

    def __init__(self, cfg: DecodeConfig, n_frames: int, fps: float, rng: np.random.Generator,
                 work_size: tuple[int, int], timeline: int = 0) -> None:
        """`n_frames` the stream's frames; `timeline` (when longer) the frames of the time they are
        shown, the last one held (`_timeline`): outputs are sampled over it, and a frame past the last
        is the last one."""
        self.cfg, self.fps, self.work_size = cfg, fps, work_size
        self.last = n_frames - 1
        timeline = max(n_frames, timeline)
        want = set(cfg.outputs)
        self.views: list[sampling.SnippetView] = []
        self.snippet_idx: list[int] = []
        self.face_times: list[int] = []
        self.face_idx: list[int] = []
        if "snippets" in want:
            self.views = sampling.snippet_views(
                timeline, segments=cfg.segments, length=cfg.frames_per_segment,
                train_views=cfg.train_views, rng=rng,
            )
            self.snippet_idx = sorted({self.held(i) for v in self.views for i in v.frames.ravel()})
        if "frames" in want:
            chosen = sampling.face_frames(timeline, fps, cfg.face_rate, cfg.face_max_frames)
            self.face_times = chosen.tolist()
            self.face_idx = sorted({self.held(i) for i in self.face_times})
        self.timeline = timeline
        self.picker = kf.SlicePicker(fps) if "keyframes" in want else None
        self.small: dict[int, np.ndarray] = {}
        self.faces: dict[int, np.ndarray] = {}
        self._counted = 0

    def held(self, i: int) -> int:
        """The stream's frame shown at timeline frame `i`."""
        return min(int(i), self.last)

    @property
    def counted(self) -> int:
        """Frames seen by an output that sees every frame (keyframes, or the counting stream)."""
        return self.picker.count if self.picker is not None else self._counted

    @property
    def wanted(self) -> np.ndarray:
        """Sorted indices of the frames some output needs (keyframes aside: they need every frame)."""
        return np.array(sorted(set(self.snippet_idx) | set(self.face_idx)), np.int64)

    def streams(self, count: bool) -> list[FrameStream]:
        """The outputs of selected frames; `count` adds a 2x2 stream of every frame when no keyframes
        output counts them."""
        width, height = self.work_size
        streams = []
        if self.snippet_idx:
            h, w = short_side_size(height, width, self.cfg.short_side)
            streams.append(FrameStream(w, h, self.snippet_idx, self.small.__setitem__, scale_flags="area"))
        if self.face_idx:
            streams.append(FrameStream(width, height, self.face_idx, self.faces.__setitem__))
        if count and self.picker is None:
            streams.append(FrameStream(2, 2, None, self._count, pix_fmt="gray", crop=True))
        return streams

    @property
    def keyframe_stream(self) -> KeyframeStream | None:
        if self.picker is None:
            return None
        return KeyframeStream(self.cfg.keyframe_size, self.picker)

    def complete(self) -> bool:
        return len(self.small) == len(self.snippet_idx) and len(self.faces) == len(self.face_idx)

    def _count(self, i: int, _frame: np.ndarray) -> None:
        self._counted = i + 1

    def finish(self, n_frames: int) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        if self.views:
            arrays.update(self._snippet_arrays())
        if self.face_idx:
            idx = np.array(self.face_times)
            arrays["frames"] = np.stack([self.faces[self.held(i)] for i in idx])
            arrays["frames_times_ms"] = sampling.frame_times_ms(idx, self.fps)
        if self.picker is not None:
            arrays.update(self._keyframe_arrays(max(n_frames, self.timeline)))
        return arrays

    def _snippet_arrays(self) -> dict[str, np.ndarray]:
        size = self.cfg.crop_size
        clips = np.empty((len(self.views), *self.views[0].frames.shape, size, size, 3), np.uint8)
        for clip, view in zip(clips, self.views, strict=True):
            for row, i in zip(clip.reshape(-1, size, size, 3), view.frames.ravel(), strict=True):
                frame = crop(self.small[self.held(i)], size, view.crop)
                row[...] = frame[:, ::-1] if view.flip else frame
        return {
            "snippets": clips,
            "snippets_times_ms": np.stack([sampling.span_times_ms(v.frames, self.fps) for v in self.views]),
            "snippets_flip": np.array([v.flip for v in self.views]),
        }

    def _keyframe_arrays(self, n_frames: int) -> dict[str, np.ndarray]:
        assert self.picker is not None
        keyframes = self.picker.finish()
        slices = sampling.second_slices(n_frames, self.fps)
        times = sampling.span_times_ms(slices - [0, 1], self.fps)
        # the seconds after the last frame (held) show the last second's keyframe
        keyframes += keyframes[-1:] * (len(slices) - len(keyframes))
        return {
            "keyframes": np.stack([f for _, f in keyframes]),
            "keyframes_index": np.array([i for i, _ in keyframes]),
            "keyframes_times_ms": times[: len(keyframes)],
        }


def _expected_frames(info: VideoInfo, fps: float) -> int:
    if abs(fps - info.fps) < 1e-6:
        return info.n_frames
    return max(1, round(info.duration_s * fps))


class SeekPlan(NamedTuple):
    spans: list[Span]
    first_pts: float          # the first frame's timestamp (s)
    keyframes: np.ndarray     # frame indices of the keyframes
    rotation: int             # degrees, applied as ffmpeg's autorotation does


UNTIL_THE_END = 1 << 40   # frames: a span that ends with the file


def _stream_position(path: Path, info: VideoInfo, fps: float) -> tuple[float, np.ndarray] | None:
    """(first frame's timestamp, frame indices of the keyframes) when the in-process routes apply, else None.

    Only for a constant-rate stream decoded at its own rate that starts with its first frame (frame i is
    then at first + i / fps in the file too), turned by a multiple of 90 degrees if at all.
    """
    if abs(fps - info.fps) > 1e-6 or VFR_WARNING in info.warnings or info.rotation not in AUTOROTATE:
        return None
    packets = info.packets or video_packets(path)
    if packets is None or abs(packets.first_pts - packets.start) > 0.5 / fps:
        return None
    return packets.first_pts, keyframe_indices(packets.keyframes, packets.first_pts, fps)


def _seek_plan(path: Path, info: VideoInfo, fps: float, sink: _FrameSink) -> SeekPlan | None:
    """The spans to decode by seeking when that decodes fewer frames than one pass; else None.

    Only where `_stream_position` allows, and when no output needs every frame (`DecodeConfig.may_seek`).
    """
    wanted = sink.wanted
    if not sink.cfg.may_seek or len(wanted) == 0 or (position := _stream_position(path, info, fps)) is None:
        return None
    first_pts, keyframes = position
    spans, cost = plan_spans(wanted, keyframes, SEEK_COST_FRAMES)
    return SeekPlan(spans, first_pts, keyframes, info.rotation) if cost < info.n_frames else None


def _whole_plan(path: Path, info: VideoInfo, fps: float, sink: _FrameSink) -> SeekPlan | None:
    """Every frame in-process, when keyframes are asked for and `_stream_position` allows; else None."""
    if sink.picker is None or (position := _stream_position(path, info, fps)) is None:
        return None
    first_pts, keyframes = position
    return SeekPlan([Span(0, UNTIL_THE_END)], first_pts, keyframes, info.rotation)


def _within(streams: list[FrameStream], spans: list[Span]) -> list[FrameStream]:
    """Each stream cut to the frames these spans decode; a stream with none of them is left out."""
    ranges = [(s.first, s.first + s.count) for s in spans]
    cut = [replace(stream, frames=[i for i in stream.frames or () if any(a <= i < b for a, b in ranges)])
           for stream in streams]
    return [stream for stream in cut if stream.frames]


def _decode_plan(path: Path, fps: float, streams: list[FrameStream], plan: SeekPlan, threads: int) -> None:
    """Decode the plan's spans, split over `threads` (0: every core) parts decoded side by side."""
    cores = threads or len(os.sched_getaffinity(0))
    cost = sum(span_cost(span, plan.keyframes) for span in plan.spans)
    groups = split_spans(plan.spans, plan.keyframes, min(cores, max(1, cost // PART_MIN_FRAMES)))
    with ThreadPoolExecutor(len(groups)) as pool:
        runs = [pool.submit(decode_spans, path, fps=fps, streams=_within(streams, group), spans=group,
                            keyframes=plan.keyframes, first_pts=plan.first_pts, rotation=plan.rotation)
                for group in groups]
        for run in runs:
            run.result()


def _decode_whole(path: Path, fps: float, sink: _FrameSink, plan: SeekPlan, threads: int) -> None:
    """Every frame in-process, in order, on one decoder of `threads` threads (0: every core)."""
    decode_spans(path, fps=fps, streams=sink.streams(count=False), spans=plan.spans, keyframes=plan.keyframes,
                 first_pts=plan.first_pts, rotation=plan.rotation, picking=sink.keyframe_stream,
                 threads=threads or len(os.sched_getaffinity(0)))


def _decode_in_process(path: Path, info: VideoInfo, fps: float, n_expected: int, sink: _FrameSink,
                       threads: int) -> bool:
    """Try the seeking or the whole in-process route; True when it delivered everything the one pass
    would (the same frames, as many of them as expected), False when the one pass must decode."""
    if (plan := _seek_plan(path, info, fps, sink)) is not None:
        route = lambda: _decode_plan(path, fps, sink.streams(count=False), plan, threads)  # noqa: E731
    elif (plan := _whole_plan(path, info, fps, sink)) is not None:
        route = lambda: _decode_whole(path, fps, sink, plan, threads)  # noqa: E731
    else:
        return False
    try:
        route()
    except VideoError:
        return False   # the one pass decodes the file or names what is wrong with it
    return sink.complete() and (sink.picker is None or sink.picker.count == n_expected)


def _timeline(n_frames: int, sound_frames: int, fps: float) -> int:
    """Frames of the time the video is shown: its own, or while the sound goes on more than
    START_TOLERANCE after the last frame, until the sound ends (`sound_frames`), the last frame held, as
    a player shows it (a still picture under a song, a soundtrack that outlasts a cut clip)."""
    return sound_frames if sound_frames - n_frames > START_TOLERANCE * fps else n_frames


def _decode_frames(path: Path, info: VideoInfo, cfg: DecodeConfig, fps: float, n_expected: int,
                   video_id: str, messages: list[str], seek: bool = True,
                   threads: int = 0, notes: list[str] | None = None,
                   sound_frames: int = 0) -> tuple[dict[str, np.ndarray], int]:
    """The frame outputs and the stream's frame count; ffmpeg's error lines go into `messages`, what else
    the decode should say (a picture that changes size mid-stream) into `notes`. The outputs cover
    `_timeline(count, sound_frames, fps)` frames."""
    work_size = fit_size(info.width, info.height, cfg.work_max_side)

    def new_sink(n: int) -> _FrameSink:
        return _FrameSink(cfg, n, fps, video_rng(cfg.seed, video_id), work_size,
                          _timeline(n, sound_frames, fps))

    sink = new_sink(n_expected)
    if seek:
        if _decode_in_process(path, info, fps, n_expected, sink, threads):
            return sink.finish(n_expected), n_expected
        sink = new_sink(n_expected)
    heard: list[str] = []
    noted: list[str] = []
    decode_streams(path, fps=fps, streams=sink.streams(count=True), threads=threads, messages=heard,
                   video_stream=info.video_stream, keyframes=sink.keyframe_stream, notes=noted)
    n = sink.counted
    if n == 0:
        raise VideoError(path, "no frame could be decoded")
    if not sink.complete():
        if n >= n_expected:   # every promised frame came, yet a selected one did not: never loop on it
            raise VideoError(path, f"ffmpeg decoded {n} frames but not every selected one")
        return _decode_frames(path, info, cfg, fps, n, video_id, messages, seek=False, threads=threads,
                              notes=notes, sound_frames=sound_frames)
    messages.extend(heard)
    if notes is not None:
        notes.extend(noted)
    return sink.finish(n), n


def _frame_warnings(info: VideoInfo, cfg: DecodeConfig, fps: float, n_frames: int,
                    messages: list[str]) -> list[str]:
    """What the decoded frame count and ffmpeg's messages say about the stream."""
    warnings = [info.warnings] if info.warnings else []
    promised = round(info.duration_s * fps)
    counted = info.n_frames if abs(fps - info.fps) < 1e-6 else promised
    least = min(n_frames, counted)
    if promised > 1 and least < SHORT_STREAM * promised:
        warnings.append(f"{least} frames where {info.duration_s:.2f} s at {fps:g} fps promise {promised}: "
                        "the stream is cut or damaged")
    if messages:
        warnings.append(f"ffmpeg reported {len(messages)} decoding error(s), last: {messages[-1]}")
    if "snippets" in cfg.outputs and n_frames < cfg.frames_per_segment:
        warnings.append(f"only {n_frames} frame(s), fewer than one snippet of {cfg.frames_per_segment}: "
                        "frames are repeated")
    return warnings


def _on_video_clock(samples: np.ndarray, offset_s: float, rate: int, seconds: float) -> np.ndarray:
    """Samples whose first one is at `offset_s` from the first frame, put on the video's clock (sample 0 at
    the first frame) and fitted to its `seconds`: audio that starts later gets silence before it, audio
    that starts earlier loses what comes before any picture; at the end, audio that stops more than
    START_TOLERANCE sooner gets silence after it (audio that goes on longer has the last frame held for
    it: `_timeline`), so the T segments an audio extractor cuts from it are the visual segments of the
    same times. Within the tolerance the end is kept as decoded: an ordinary file's few ms of codec
    padding stay, and its samples are ffmpeg's."""
    shift = round(offset_s * rate)
    samples = np.concatenate([np.zeros(shift, samples.dtype), samples]) if shift > 0 else samples[-shift:]
    length = round(seconds * rate)
    if abs(samples.size - length) <= START_TOLERANCE * rate:
        return samples
    if samples.size > length:
        return samples[:length]
    return np.concatenate([samples, np.zeros(length - samples.size, samples.dtype)])


def end_warning(audio_s: float, video_s: float) -> str:
    """Audio that ends apart from the last frame, by more than START_TOLERANCE: what fitting it did."""
    gap = audio_s - video_s
    if abs(gap) <= START_TOLERANCE:
        return ""
    ends = f"audio {audio_s:.3f} s, video {video_s:.3f} s on the video's clock"
    if gap < 0:
        return f"audio ends {-gap:.3f} s before the video ({ends}): silence after it"
    return f"the picture ends {gap:.3f} s before the audio ({ends}): last frame held to the audio's end"


def _read_audio(path: Path, info: VideoInfo, cfg: DecodeConfig, warnings: list[str]) -> dict[int, np.ndarray]:
    """Each rate's samples as decoded (on the audio's own clock), or {} with the reason in `warnings`."""
    read = {}
    offset = info.audio_start_s - info.video_start_s
    clean = False     # whether the stream holds NaN or inf, silenced at every rate once the first found them
    for n, rate in enumerate(cfg.audio_rates):
        try:
            decoded = read_audio(path, rate, info.audio_stream,
                                 check=n == 0 and may_hold_nonfinite(info.acodec), clean=clean)
        except VideoError as exc:
            warnings.append(exc.reason)
            return {}
        samples, clean = decoded.samples, clean or bool(decoded.nonfinite_warning())
        if decoded.nonfinite_warning():
            warnings.append(decoded.nonfinite_warning())
        if samples.size == 0:
            warnings.append("audio stream holds no samples")
            return {}
        if samples.size + round(offset * rate) <= 0:
            warnings.append(f"the audio ends before the video starts ({info.video_start_s:.3f} s "
                            "in the file)")
            return {}
        read[rate] = samples
    return read


def _audio_end_s(info: VideoInfo, read: dict[int, np.ndarray]) -> float:
    """Where the first rate's audio ends on the video's clock (0 without audio)."""
    rate, samples = next(iter(read.items()), (1, np.zeros(0)))
    return info.audio_start_s - info.video_start_s + samples.size / rate if samples.size else 0.0


def decode_video(path: str | Path, video_id: str, info: VideoInfo, cfg: DecodeConfig,
                 threads: int = 0) -> Decoded:
    """Decode one probed, valid video. Raises VideoError (naming the file) when it cannot be decoded.

    `threads` is how many cores the decode may use (0: ffmpeg's own choice, and every core for a
    seeking plan); speed only, the values do not depend on it.
    """
    path = Path(path)
    if not info.ok:
        raise VideoError(path, info.error)
    if cfg.max_seconds is not None and info.duration_s > cfg.max_seconds:
        raise VideoError(path, f"{info.duration_s:.0f} s long, over decode.max_seconds "
                               f"({cfg.max_seconds:g} s)")
    fps = cfg.fps or info.fps
    messages: list[str] = []
    notes: list[str] = []
    audio_notes: list[str] = []
    read = _read_audio(path, info, cfg, audio_notes) if "audio" in cfg.outputs and info.has_audio else {}
    audio_end_s = _audio_end_s(info, read)
    sound_frames = round(audio_end_s * fps)
    arrays, n_frames = _decode_frames(path, info, cfg, fps, _expected_frames(info, fps), video_id, messages,
                                      threads=threads, notes=notes, sound_frames=sound_frames)
    warnings = _frame_warnings(info, cfg, fps, n_frames, messages) + notes + audio_notes
    shown = _timeline(n_frames, sound_frames, fps)
    if read and (warning := end_warning(audio_end_s, n_frames / fps)):
        warnings.append(warning)
    offset = info.audio_start_s - info.video_start_s
    arrays.update({f"audio_{rate}": _on_video_clock(samples, offset, rate, shown / fps)
                   for rate, samples in read.items()})
    has_audio = bool(read)
    if not info.audio_streams:
        warnings.append("no audio stream")
    attrs = {
        "source_fps": info.fps, "fps": fps, "n_frames": shown, "held_frames": shown - n_frames,
        "duration_ms": round(shown * 1000 / fps), "width": info.width, "height": info.height,
        "rotation": info.rotation, "has_audio": has_audio, "audio_stream": info.audio_stream,
        "audio_offset_ms": round((info.audio_start_s - info.video_start_s) * 1000) if has_audio else 0,
        "warnings": "; ".join(warnings),
    }
    return Decoded(arrays, attrs)
