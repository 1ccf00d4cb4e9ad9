"""Probe and validate a video in-process, with FFmpeg's demuxer (PyAV), before anything decodes it.

`probe_video` never raises for a bad file: it returns a `VideoInfo` whose `error` says what is wrong,
so the decode stage can write one row per video (good or bad) and the failure count as a metric.
The probe reads every packet header to count the frames, and from their timestamps tells a variable rate
and the stream's time span (a file may state no duration); it decodes the first audio frame for the time
the sound starts. Asked for `packets`, it also keeps the video packets' timestamps and keyframe flags,
which is what input seeking plans from.

Why in-process: the ffprobe binary costs 0.13-0.15 s just to start here (Debian's build loads 215
shared libraries), a tenth of decoding a minute of 360p video; PyAV reads the same headers and packet
list in 0.02-0.03 s. It decodes the first frame only, for the display matrix (the rotation), which
FFmpeg hands to frames, not to PyAV's streams. Decoding itself stays with the ffmpeg binary.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np

from pipeline.errors import VideoError

VFR_TOLERANCE = 0.05              # relative gap between the nominal and the average rate called variable,
                                  # and the share of irregular frame intervals called variable
START_TOLERANCE = 0.1             # s between the video's and the audio's start that is warned about
IRREGULAR_INTERVAL = 0.25         # a frame interval this far (relative) from the typical one is irregular
VFR_WARNING = "variable frame rate"
FIRST_FRAME_PACKETS = 64          # packets fed to the decoder at most for the first frame's rotation


class VideoPackets(NamedTuple):
    """Timestamps (s) of the first video stream: where the stream starts, its first frame, its keyframes."""

    start: float
    first_pts: float
    keyframes: np.ndarray



def may_hold_nonfinite(codec: str) -> bool:
    """Whether an audio codec's decoded samples may be NaN or inf. A lossless codec gives back the values
    it stored, and a float one (PCM float, WavPack, ALS) stores any bit pattern; a lossy decoder (AAC,
    MP3, Opus, Vorbis) computes bounded values from quantised integers. An unknown codec may."""
    try:
        return bool(av.Codec(codec, "r").lossless)
    except ValueError:          # av.codec.codec.UnknownCodecError
        return True

@dataclass(frozen=True)
class VideoInfo:
    path: str
    size_bytes: int = 0
    duration_s: float = 0.0
    fps: float = 0.0              # average frame rate of the video stream
    n_frames: int = 0             # counted video packets (exact for every codec we decode)
    width: int = 0                # display size: square pixels (the stored width times the pixel aspect
                                  # ratio, as a DVD's 720x480 at 32:27 shows as 853x480), after rotation
    height: int = 0
    rotation: int = 0             # degrees, from the display matrix (what ffmpeg's autorotate applies)
    vcodec: str = ""
    pix_fmt: str = ""
    has_audio: bool = False       # the chosen audio stream exists
    audio_stream: int = -1        # its index in the file (what ffmpeg maps), -1 without one
    audio_streams: int = 0        # audio streams in the file
    video_stream: int = -1        # index in the file of the video stream decoded (not a cover picture)
    acodec: str = ""
    audio_rate: int = 0
    audio_channels: int = 0
    video_start_s: float = 0.0    # presentation time of the first video frame in the file (the clock's 0)
    audio_start_s: float = 0.0    # presentation time of the first decoded audio sample (after the codec's
                                  # priming is skipped); equal to video_start_s without audio
    warnings: str = ""            # what decodes but deserves a look (variable frame rate), "; "-joined
    error: str = ""
    packets: VideoPackets | None = field(default=None, compare=False, repr=False)  # not a table column

    @property
    def ok(self) -> bool:
        return not self.error

    def as_row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "packets"}


class _Demuxed(NamedTuple):
    """What one pass over a video stream's packets gives: their count, timestamps and keyframe flags, and
    the rotation of the first frame that decodes (None when none did)."""

    count: int
    pts: np.ndarray               # in the stream's time base, packets without a timestamp left out
    key: np.ndarray
    shown: np.ndarray             # False where an edit list discards the packet's frame (before the cut)
    rotation: int | None
    audio_start: float | None     # the first decoded audio frame's time (s), None when none decoded


def _rate(value: Fraction | None) -> float:
    return float(value) if value else 0.0


def _seconds(value: float | np.ndarray) -> float | np.ndarray:
    """Times to the microsecond, as ffprobe printed them, so that rows and plans match earlier probes'."""
    return np.round(value, 6) if isinstance(value, np.ndarray) else round(float(value), 6)


def video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The first video stream that is not a cover picture: the one every decode route reads."""
    return next((s for s in container.streams.video
                 if not s.disposition & av.stream.Disposition.attached_pic), None)


def audio_stream(container: av.container.InputContainer, wanted: int | None) -> av.AudioStream | None:
    """The audio stream to decode: the `wanted`-th audio stream (0-based, None when absent), or by
    default the one marked default, else the first."""
    streams = list(container.streams.audio)
    if wanted is not None:
        return streams[wanted] if 0 <= wanted < len(streams) else None
    return next((s for s in streams if s.disposition & av.stream.Disposition.default), None) or \
        next(iter(streams), None)


HDR_TRANSFERS = {16: "PQ", 18: "HLG"}     # AVColorTransferCharacteristic: SMPTE 2084, ARIB STD-B67


def _hdr_warning(video: av.VideoStream) -> str:
    """HDR video (phones record HLG by default) goes to 8-bit RGB through swscale, which converts the
    colour matrix but not the transfer curve: without tone mapping the frames are flatter and duller than
    a player shows them, which the extractors' training data never was."""
    transfer = HDR_TRANSFERS.get(int(getattr(video.codec_context, "color_trc", 0) or 0))
    if transfer is None:
        return ""
    return (f"HDR video ({transfer} transfer curve) decoded to 8-bit RGB without tone mapping: colours "
            "are flatter and duller than a player shows")


FIELD_ORDERS = {2: "top field first", 3: "bottom field first", 4: "top field coded first, shown second",
                5: "bottom field coded first, shown second"}   # AVFieldOrder, as the container or codec says


def _interlace_warning(video: av.VideoStream) -> str:
    """Interlaced video (DVD, TV captures, camcorders) is decoded as its frames, two fields woven together:
    no route deinterlaces, so anything that moves between the fields has combed edges, faces included."""
    order = FIELD_ORDERS.get(int(getattr(video.codec_context, "field_order", 0) or 0))
    if order is None:
        return ""
    return f"interlaced video ({order}) decoded without deinterlacing: moving edges are combed"


def _video_warning(container: av.container.InputContainer, chosen: av.VideoStream) -> str:
    """Say which of several video streams (cover pictures aside) is decoded: another angle, a picture in
    picture or a preview track is never looked at, and nothing else would tell."""
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if len(streams) < 2:
        return ""
    names = ", ".join(f"#{s.index} {s.codec_context.width}x{s.codec_context.height} {s.codec.canonical_name}"
                      for s in streams)
    return f"{len(streams)} video streams ({names}): decoded #{chosen.index} only"


def _audio_warning(streams: list[av.AudioStream], chosen: av.AudioStream | None, wanted: int | None) -> str:
    """Say which of several audio tracks is decoded (they are never mixed), or that the wanted one is
    missing."""
    if wanted is not None and chosen is None:
        return (f"no audio stream #{wanted} (decode.audio_stream) among the file's {len(streams)}: "
                "decoded without audio")
    if len(streams) < 2 or chosen is None:
        return ""
    names = ", ".join(f"#{i} {s.metadata.get('language', '') or s.codec.canonical_name}"
                      for i, s in enumerate(streams))
    return (f"{len(streams)} audio streams ({names}): decoded #{streams.index(chosen)} only; "
            "decode.audio_stream picks another")


def _demux(container: av.container.InputContainer, stream: av.VideoStream, rotation: bool,
           audio: av.AudioStream | None = None) -> _Demuxed:
    """Every packet header of `stream`, read without decoding (but the first frame, when `rotation`, and
    the first frame of `audio`, whose time is where the sound starts once the codec's priming samples are
    skipped: a packet's timestamp may still count them).

    A read error ends the listing, as it ends ffmpeg's reading: what came before counts; decode reports
    the shortfall.
    """
    pts: list[int] = []
    key: list[bool] = []
    shown: list[bool] = []
    count, fed, angle, heard = 0, 0, None, None
    stream.codec_context.thread_count = 1
    streams = (stream, audio) if audio is not None else (stream,)
    try:
        for packet in container.demux(*streams):
            if packet.size == 0 and packet.pts is None and packet.dts is None:
                continue                                        # PyAV's end-of-stream flush packet
            if packet.stream is not stream:
                if heard is None:
                    heard = _first_sound(audio, packet)
                continue
            count += 1
            if packet.pts is not None:
                pts.append(packet.pts)
                key.append(packet.is_keyframe)
                shown.append(not packet.is_discard)
            if rotation and angle is None and fed < FIRST_FRAME_PACKETS:
                fed += 1
                angle = _rotation_of(stream, packet)
    except av.FFmpegError:
        pass
    return _Demuxed(count, np.array(pts, dtype=np.int64), np.array(key, dtype=bool),
                    np.array(shown, dtype=bool), angle, heard)


def _first_sound(audio: av.AudioStream, packet: av.Packet) -> float | None:
    """The time (s) of the first audio frame `packet` completes; None while none has (or it is damaged)."""
    try:
        frames = audio.decode(packet)
    except av.FFmpegError:
        return None
    if not frames or frames[0].pts is None:
        return None
    return _seconds(frames[0].pts * float(frames[0].time_base or audio.time_base))


def _rotation_of(stream: av.VideoStream, packet: av.Packet) -> int | None:
    """The display rotation of the first frame `packet` completes; None while none has (or it is damaged)."""
    try:
        frames = stream.decode(packet)
    except av.FFmpegError:
        return None
    return int(round(frames[0].rotation)) % 360 if frames else None


def _packets(stream: av.VideoStream, demuxed: _Demuxed) -> VideoPackets | None:
    if len(demuxed.pts) == 0:
        return None
    base = float(stream.time_base or 0)
    times = _seconds(demuxed.pts * base)
    # the first frame shown: an edit list that cuts mid-GOP keeps (and discards) the frames before the cut
    first = float(times[demuxed.shown].min() if demuxed.shown.any() else times.min())
    start = first if stream.start_time is None else _seconds(stream.start_time * base)
    return VideoPackets(start, first, np.sort(times[demuxed.key]))


class _Timing(NamedTuple):
    """What the video packets' timestamps say about when the frames are shown."""

    first: float                  # the first frame's time (s)
    span: float                   # first frame to the end of the last (the last shown a typical interval)
    typical: float                # the median frame interval (s)
    shortest: float
    longest: float
    irregular: float              # share of intervals off the typical one by more than IRREGULAR_INTERVAL

    @property
    def variable(self) -> bool:
        """Irregular intervals throughout. A few long gaps alone are lost frames (a damaged stream, which
        decode warns about by its frame count), not a variable rate."""
        return self.irregular > VFR_TOLERANCE


def _timing(stream: av.VideoStream, demuxed: _Demuxed) -> _Timing | None:
    """None without a timestamp; with one frame, a span of 0."""
    if len(demuxed.pts) == 0:
        return None
    base = float(stream.time_base or 0)
    times = np.unique(demuxed.pts[demuxed.shown] if demuxed.shown.any() else demuxed.pts) * base
    if len(times) < 2:
        return _Timing(float(times[0]), 0.0, 0.0, 0.0, 0.0, 0.0)
    gaps = np.diff(times)
    typical = float(np.median(gaps))
    # timestamps are rounded to the time base (1 ms in webm): a tick or so of jitter is not irregular
    off = np.abs(gaps - typical) > max(IRREGULAR_INTERVAL * typical, 1.5 * base)
    span = float(times[-1] - times[0]) + typical
    return _Timing(float(times[0]), span, typical, float(gaps.min()), float(gaps.max()), float(off.mean()))


def _duration(container: av.container.InputContainer, stream: av.VideoStream, timing: _Timing | None,
              n_frames: int, fps: float, variable: bool) -> float:
    """The stated duration of the video stream, else of the file, else the span of the timestamps (a
    browser's MediaRecorder writes webm without any duration). The file's duration is not used for a
    variable rate, whose average rate is computed from it: it may be a longer audio stream's.

    Matroska states no stream duration, but ffmpeg and mkvmerge write each track's in a DURATION tag:
    without it, the file's duration, a longer soundtrack's, made a complete video look cut."""
    stated = [stream.duration and stream.duration * float(stream.time_base or 0),
              _tag_seconds(stream.metadata.get("DURATION", ""))]
    if not variable:
        stated.append(container.duration and container.duration / av.time_base)
    for value in stated:
        if value and value > 0:
            return _seconds(value)
    if timing is not None and timing.span > 0:
        return _seconds(timing.span)
    return n_frames / fps if fps > 0 else 0.0


def _tag_seconds(tag: str) -> float:
    """A Matroska DURATION tag ("00:00:01.023000000") in seconds; 0 when absent or unreadable."""
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0


def _audio_start(audio: av.AudioStream | None, demuxed: _Demuxed, video_start: float) -> float:
    if audio is None:
        return video_start
    if demuxed.audio_start is not None:
        return demuxed.audio_start
    if audio.start_time is not None:
        return _seconds(audio.start_time * float(audio.time_base or 0))
    return video_start


def _info(path: Path, container: av.container.InputContainer, packets: bool,
          wanted_audio: int | None) -> VideoInfo:
    size = path.stat().st_size
    video = video_stream(container)
    if video is None:
        return VideoInfo(path=str(path), size_bytes=size, error="no video stream")
    audio = audio_stream(container, wanted_audio)
    audios = list(container.streams.audio)
    demuxed = _demux(container, video, rotation=True, audio=audio)
    timing = _timing(video, demuxed)
    variable = timing is not None and timing.variable
    fps = _rate(video.average_rate) or _rate(video.base_rate)
    duration = _duration(container, video, timing, demuxed.count, fps, variable)
    rate_warning = _rate_warning(_rate(video.base_rate), fps)
    if variable:
        # the stated average may come from the first frames only (ffmpeg's guess when the container
        # states no duration): the true average is the frames over their time span
        fps = demuxed.count / duration if duration > 0 else fps
        rate_warning = rate_warning or _interval_warning(timing, fps)
    rotation = demuxed.rotation or 0
    w, h = _display_size(video)
    if rotation in (90, 270):
        w, h = h, w
    video_start = _seconds(timing.first) if timing is not None else 0.0
    audio_start = _audio_start(audio, demuxed, video_start)
    info = VideoInfo(
        path=str(path), size_bytes=size, fps=fps, n_frames=demuxed.count,
        duration_s=duration, width=w, height=h, rotation=rotation,
        vcodec=video.codec.canonical_name, pix_fmt=video.codec_context.pix_fmt or "",
        has_audio=audio is not None, audio_stream=audio.index if audio else -1, audio_streams=len(audios),
        video_stream=video.index,
        acodec=audio.codec.canonical_name if audio else "",
        audio_rate=audio.codec_context.sample_rate if audio else 0,
        audio_channels=audio.codec_context.channels if audio else 0,
        video_start_s=video_start, audio_start_s=audio_start,
        warnings="; ".join(w for w in (rate_warning, _video_warning(container, video), _hdr_warning(video),
                                       _interlace_warning(video),
                                       _audio_warning(audios, audio, wanted_audio),
                                       start_warning(video_start, audio_start) if audio else "") if w),
        packets=_packets(video, demuxed) if packets else None,
    )
    return _validated(info)


def _display_size(video: av.VideoStream) -> tuple[int, int]:
    """The stored size with the width scaled by the pixel aspect ratio (the container's, else the codec's),
    so that every output scaled to it has square pixels: anamorphic DVD and DV pictures are otherwise
    squashed or stretched by a third, faces with them. An unknown ratio (0) counts as square."""
    w, h = video.codec_context.width, video.codec_context.height
    sar = video.sample_aspect_ratio or video.codec_context.sample_aspect_ratio
    if sar and sar > 0 and sar != 1 and w > 0:
        w = max(1, round(w * sar))
    return w, h


def _rate_warning(nominal: float, average: float) -> str:
    """A variable frame rate shows as a nominal (r_frame_rate) far from the average rate; decode resamples
    it to a constant rate, so frame i is at i / fps either way."""
    if nominal <= 0 or average <= 0 or abs(nominal - average) <= VFR_TOLERANCE * average:
        return ""
    return (f"{VFR_WARNING} (nominal {nominal:g} fps, average {average:.3f} fps): "
            "resampled to a constant rate")


def _interval_warning(timing: _Timing, average: float) -> str:
    """A variable rate the stated rates do not show (they agree when both are guessed from the first
    frames), seen in the timestamps themselves."""
    return (f"{VFR_WARNING} (frame intervals {timing.shortest * 1000:.0f} to {timing.longest * 1000:.0f} ms, "
            f"{timing.irregular:.0%} irregular, average {average:.3f} fps over {timing.span:.2f} s): "
            "resampled to a constant rate")


def start_warning(video_start: float, audio_start: float) -> str:
    """Streams that start apart: decode puts the audio on the video's clock (t = 0 at the first frame),
    so this says what that costs."""
    offset = audio_start - video_start
    if abs(offset) <= START_TOLERANCE:
        return ""
    starts = f"video at {video_start:.3f} s, audio at {audio_start:.3f} s in the file"
    if offset > 0:
        return (f"audio starts {offset:.3f} s after the video ({starts}): "
                f"its first {offset:.3f} s are silence on the video's clock")
    return (f"audio starts {-offset:.3f} s before the video ({starts}): "
            f"its first {-offset:.3f} s, before any picture, are cut")


def _validated(info: VideoInfo) -> VideoInfo:
    problems = []
    if info.width <= 0 or info.height <= 0:
        problems.append(f"invalid frame size {info.width}x{info.height}")
    if info.n_frames <= 0:
        problems.append("no decodable video frames")
    if info.fps <= 0:
        problems.append("unknown frame rate")
    if not problems:
        return info
    return VideoInfo(**{**info.as_row(), "error": "; ".join(problems)})


def _reason(exc: Exception) -> str:
    """FFmpeg's words for an open that failed, without PyAV's errno and path decoration."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def probe_video(path: str | os.PathLike[str], packets: bool = False, audio: int | None = None) -> VideoInfo:
    """Probe one file. Counting packets reads the container (no decoding), so it is cheap and exact.

    `packets` also fills `VideoInfo.packets` (None when no video packet has a timestamp); `audio` picks the
    audio stream (`audio_stream`).
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a directory, not a video file" if path.is_dir() else "file not found"
        return VideoInfo(path=str(path), error=reason)
    if path.stat().st_size == 0:
        return VideoInfo(path=str(path), error="empty file (0 bytes)")
    try:
        with av.open(str(path)) as container:
            return _info(path, container, packets, audio)
    except (av.FFmpegError, OSError) as exc:
        return VideoInfo(path=str(path), size_bytes=path.stat().st_size, error=f"unreadable: {_reason(exc)}")


def video_packets(path: str | os.PathLike[str]) -> VideoPackets | None:
    """The first video stream's packets alone (`probe_video(path, packets=True)` lists them with the
    probe); None when none has a timestamp. Reads packet headers only. Raises VideoError when the file
    cannot be read.
    """
    try:
        with av.open(str(path)) as container:
            video = video_stream(container)
            return _packets(video, _demux(container, video, rotation=False)) if video else None
    except (av.FFmpegError, OSError) as exc:
        raise VideoError(Path(path), f"could not list the packets: {_reason(exc)}") from exc
