"""Probe and validate a video in-process, with FFmpeg's demuxer (PyAV), before anything decodes it.

`probe_video` never raises for a bad file: it returns a `VideoInfo` whose `error` says what is wrong,
so the decode stage can write one row per video (good or bad) and the failure count as a metric.
The probe reads every packet header to count the frames; asked for `packets`, it also keeps the video
packets' timestamps and keyframe flags, which is what input seeking plans from.

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

VFR_TOLERANCE = 0.05              # relative gap between the nominal and the average rate called variable
VFR_WARNING = "variable frame rate"
FIRST_FRAME_PACKETS = 64          # packets fed to the decoder at most for the first frame's rotation


class VideoPackets(NamedTuple):
    """Timestamps (s) of the first video stream: where the stream starts, its first frame, its keyframes."""

    start: float
    first_pts: float
    keyframes: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    path: str
    size_bytes: int = 0
    duration_s: float = 0.0
    fps: float = 0.0              # average frame rate of the video stream
    n_frames: int = 0             # counted video packets (exact for every codec we decode)
    width: int = 0                # display size, after rotation
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
    rotation: int | None


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


def _demux(container: av.container.InputContainer, stream: av.VideoStream, rotation: bool) -> _Demuxed:
    """Every packet header of `stream`, read without decoding (but the first frame, when `rotation`).

    A read error ends the listing, as it ends ffmpeg's reading: what came before counts; decode reports
    the shortfall.
    """
    pts: list[int] = []
    key: list[bool] = []
    count, fed, angle = 0, 0, None
    stream.codec_context.thread_count = 1
    try:
        for packet in container.demux(stream):
            if packet.size == 0 and packet.pts is None and packet.dts is None:
                continue                                        # PyAV's end-of-stream flush packet
            count += 1
            if packet.pts is not None:
                pts.append(packet.pts)
                key.append(packet.is_keyframe)
            if rotation and angle is None and fed < FIRST_FRAME_PACKETS:
                fed += 1
                angle = _rotation_of(stream, packet)
    except av.FFmpegError:
        pass
    return _Demuxed(count, np.array(pts, dtype=np.int64), np.array(key, dtype=bool), angle)


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
    first = float(times.min())
    start = first if stream.start_time is None else _seconds(stream.start_time * base)
    return VideoPackets(start, first, np.sort(times[demuxed.key]))


def _duration(container: av.container.InputContainer, stream: av.VideoStream, n_frames: int,
              fps: float) -> float:
    for value in (stream.duration and stream.duration * float(stream.time_base or 0),
                  container.duration and container.duration / av.time_base):
        if value and value > 0:
            return _seconds(value)
    return n_frames / fps if fps > 0 else 0.0


def _info(path: Path, container: av.container.InputContainer, packets: bool,
          wanted_audio: int | None) -> VideoInfo:
    size = path.stat().st_size
    video = video_stream(container)
    if video is None:
        return VideoInfo(path=str(path), size_bytes=size, error="no video stream")
    audio = audio_stream(container, wanted_audio)
    audios = list(container.streams.audio)
    demuxed = _demux(container, video, rotation=True)
    fps = _rate(video.average_rate) or _rate(video.base_rate)
    rotation = demuxed.rotation or 0
    w, h = video.codec_context.width, video.codec_context.height
    if rotation in (90, 270):
        w, h = h, w
    info = VideoInfo(
        path=str(path), size_bytes=size, fps=fps, n_frames=demuxed.count,
        duration_s=_duration(container, video, demuxed.count, fps), width=w, height=h, rotation=rotation,
        vcodec=video.codec.canonical_name, pix_fmt=video.codec_context.pix_fmt or "",
        has_audio=audio is not None, audio_stream=audio.index if audio else -1, audio_streams=len(audios),
        video_stream=video.index,
        acodec=audio.codec.canonical_name if audio else "",
        audio_rate=audio.codec_context.sample_rate if audio else 0,
        audio_channels=audio.codec_context.channels if audio else 0,
        warnings="; ".join(w for w in (_rate_warning(_rate(video.base_rate), fps),
                                       _audio_warning(audios, audio, wanted_audio)) if w),
        packets=_packets(video, demuxed) if packets else None,
    )
    return _validated(info)


def _rate_warning(nominal: float, average: float) -> str:
    """A variable frame rate shows as a nominal (r_frame_rate) far from the average rate; decode resamples
    it to a constant rate, so frame i is at i / fps either way."""
    if nominal <= 0 or average <= 0 or abs(nominal - average) <= VFR_TOLERANCE * average:
        return ""
    return (f"{VFR_WARNING} (nominal {nominal:g} fps, average {average:.3f} fps): "
            "resampled to a constant rate")


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
