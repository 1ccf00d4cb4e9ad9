"""Probe and validate a video with ffprobe before anything decodes it.

`probe_video` never raises for a bad file: it returns a `VideoInfo` whose `error` says what is wrong,
so the decode stage can write one row per video (good or bad) and the failure count as a metric.
Asked for `packets`, the same ffprobe run also lists the video packets' timestamps and keyframe flags
(the probe reads every packet header anyway to count them), which is what input seeking plans from.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import ffmpeg
import numpy as np

from pipeline.errors import VideoError
from pipeline.media.ffmpeg_io import last_line

PROBE_TIMEOUT_S = 120
VFR_TOLERANCE = 0.05              # relative gap between the nominal and the average rate called variable
VFR_WARNING = "variable frame rate"
PACKET_ENTRIES = "packet=stream_index,pts_time,flags"


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
    rotation: int = 0             # degrees, as stored in the stream's display matrix or rotate tag
    vcodec: str = ""
    pix_fmt: str = ""
    has_audio: bool = False
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


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value)


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(round(float(side["rotation"]))) % 360
    return int(stream.get("tags", {}).get("rotate", 0)) % 360


def _video_stream(streams: list[dict[str, Any]]) -> dict[str, Any] | None:
    videos = [
        s for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic", 0)
    ]
    return videos[0] if videos else None


def _duration(fmt: dict[str, Any], stream: dict[str, Any], n_frames: int, fps: float) -> float:
    for value in (stream.get("duration"), fmt.get("duration")):
        if value not in (None, "N/A") and float(value) > 0:
            return float(value)
    return n_frames / fps if fps > 0 else 0.0


def _packets(data: dict[str, Any], index: int) -> VideoPackets | None:
    """The packets of stream `index` in ffprobe's output; None when none has a timestamp."""
    packets = [p for p in data.get("packets", [])
               if p.get("stream_index") == index and p.get("pts_time", "N/A") != "N/A"]
    if not packets:
        return None
    times = np.array([float(p["pts_time"]) for p in packets])
    key = np.array([p.get("flags", "").startswith("K") for p in packets])
    first = float(times.min())
    stream = next((s for s in data.get("streams", []) if s.get("index") == index), {})
    start = stream.get("start_time", "N/A")
    return VideoPackets(first if start == "N/A" else float(start), first, np.sort(times[key]))


def _info_from_probe(path: Path, data: dict[str, Any]) -> VideoInfo:
    streams = data.get("streams", [])
    fmt = data.get("format", {})
    video = _video_stream(streams)
    size = path.stat().st_size
    if video is None:
        return VideoInfo(path=str(path), size_bytes=size, error="no video stream")
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
    nominal = _rate(video.get("r_frame_rate"))
    n_frames = int(video.get("nb_read_packets") or 0)
    rotation = _rotation(video)
    w, h = int(video.get("width") or 0), int(video.get("height") or 0)
    if rotation in (90, 270):
        w, h = h, w
    info = VideoInfo(
        path=str(path), size_bytes=size, fps=fps, n_frames=n_frames,
        duration_s=_duration(fmt, video, n_frames, fps), width=w, height=h, rotation=rotation,
        vcodec=video.get("codec_name", ""), pix_fmt=video.get("pix_fmt", ""),
        has_audio=audio is not None,
        acodec=(audio or {}).get("codec_name", ""),
        audio_rate=int((audio or {}).get("sample_rate") or 0),
        audio_channels=int((audio or {}).get("channels") or 0),
        warnings=_rate_warning(nominal, fps),
        packets=_packets(data, video.get("index", 0)) if "packets" in data else None,
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


def probe_video(path: str | os.PathLike[str], packets: bool = False) -> VideoInfo:
    """Probe one file. Counting packets reads the container (no decoding), so it is cheap and exact.

    `packets` also fills `VideoInfo.packets` (None when no video packet has a timestamp).
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a directory, not a video file" if path.is_dir() else "file not found"
        return VideoInfo(path=str(path), error=reason)
    if path.stat().st_size == 0:
        return VideoInfo(path=str(path), error="empty file (0 bytes)")
    try:
        listing = {"show_entries": PACKET_ENTRIES} if packets else {}
        data = ffmpeg.probe(str(path), timeout=PROBE_TIMEOUT_S, count_packets=None, **listing)
    except ffmpeg.Error as exc:
        message = exc.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[-1] if message else "ffprobe failed"
        return VideoInfo(path=str(path), size_bytes=path.stat().st_size, error=f"unreadable: {reason}")
    return _info_from_probe(path, data)


def video_packets(path: str | os.PathLike[str]) -> VideoPackets | None:
    """The first video stream's packets alone (`probe_video(path, packets=True)` lists them with the
    probe); None when none has a timestamp. Reads packet headers only. Raises VideoError when ffprobe fails.
    """
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
           f"stream=index,start_time:{PACKET_ENTRIES}", "-of", "json", str(path)]
    done = subprocess.run(cmd, capture_output=True, timeout=PROBE_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise VideoError(Path(path), f"ffprobe could not list the packets: {last_line(done.stderr)}")
    data = json.loads(done.stdout)
    streams = data.get("streams") or [{}]
    return _packets(data, streams[0].get("index", 0))
