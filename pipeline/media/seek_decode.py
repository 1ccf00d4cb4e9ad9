"""Decode in-process (PyAV): the spans of a seeking plan, handing the decoder only the pictures needed, or
every frame for the keyframe choice (`picking`).

For each span the demuxer seeks to the keyframe at or before it (`seek_plan.decode_starts`) and the
packets from there to the span's last frame go to a single-thread decoder, except H.264 pictures that
nothing refers to (every slice with nal_ref_idc 0) and that no output wants: with x264's default
B-frames, 45% of all pictures are such, and ffmpeg's command line can only decode all of them or skip
all of them (`-skip_frame`). Each wanted frame then goes through the filters the one-pass ffmpeg
applies (its autorotation, `scale` with the output's flags, the output's pixel format), built from the
same libavfilter, so the frames are the one-pass frames (`tests/test_decode_seek.py`). For keyframes,
each frame goes through the histogram copy's filters, and only the frame chosen in its second through
the keyframe size's: the one pass must scale every frame to that size, as ffmpeg cannot be asked later.
Every frame must then come, once, in order (frame i at first + i / fps): anything else raises.

Anything unexpected (a decoder error, a frame flagged corrupt, a frame without a timestamp) raises
VideoError, and the caller decodes the video in one pass instead, where ffmpeg names what is wrong.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np

from pipeline.errors import VideoError
from pipeline.media.ffmpeg_io import CHANNELS, FrameStream, KeyframeStream
from pipeline.media.probe import video_stream
from pipeline.media.seek_plan import Span, decode_starts

H264_SLICES = (1, 2, 5)    # NAL unit types of a coded slice, a slice data partition A, an IDR slice
AUTOROTATE = {             # what ffmpeg's autorotation inserts for the display rotation the probe reports
    0: (),
    90: (("transpose", "cclock"),),
    180: (("hflip", ""), ("vflip", "")),
    270: (("transpose", "clock"),),
}


def _nal_headers(data: bytes, length_size: int) -> Iterator[int]:
    """The first byte of each NAL unit: length-prefixed (mp4, mkv) or, with `length_size` 0, after
    Annex B start codes (MPEG-TS, raw streams)."""
    if length_size:
        at = 0
        while at + length_size < len(data):
            yield data[at + length_size]
            at += length_size + int.from_bytes(data[at:at + length_size], "big")
        return
    at = data.find(b"\x00\x00\x01")
    while 0 <= at < len(data) - 3:
        yield data[at + 3]
        at = data.find(b"\x00\x00\x01", at + 3)


def disposable(data: bytes, length_size: int) -> bool:
    """True when the H.264 access unit `data` has slices and none is a reference (nal_ref_idc 0)."""
    slices = [header for header in _nal_headers(data, length_size) if header & 0x1F in H264_SLICES]
    return bool(slices) and not any(header & 0x60 for header in slices)


def nal_length_size(codec: av.CodecContext) -> int | None:
    """Bytes of each NAL unit's length prefix (0: Annex B start codes); None when the stream is not
    H.264, whose pictures are then all decoded."""
    if codec.name != "h264":
        return None
    extra = codec.extradata or b""
    return (extra[4] & 3) + 1 if len(extra) > 4 and extra[0] == 1 else 0


class _Filter:
    """One output's filter chain, as the one-pass ffmpeg builds it: rotation, scale or crop, pixel format."""

    def __init__(self, video: av.VideoStream, out: FrameStream, rotation: int) -> None:
        self.shape = (out.height, out.width, CHANNELS[out.pix_fmt])
        self.graph = av.filter.Graph()
        size = f"{out.width}:{out.height}"
        chain = [*AUTOROTATE[rotation],
                 ("crop", f"{size}:0:0") if out.crop else ("scale", f"{size}:flags={out.scale_flags}"),
                 ("format", out.pix_fmt)]
        node = self.graph.add_buffer(template=video)
        for name, args in chain:
            following = self.graph.add(name, args)
            node.link_to(following)
            node = following
        node.link_to(self.graph.add("buffersink"))
        self.graph.configure()

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        self.graph.push(frame)
        return self.graph.pull().to_ndarray().reshape(self.shape)


class _Picking:
    """Every frame to a KeyframeStream's picker: its histogram copy now, its image if it is chosen."""

    def __init__(self, video: av.VideoStream, out: KeyframeStream, rotation: int) -> None:
        self.picker = out.picker
        self.nbytes: int | None = None
        self.small = _Filter(video, out.histogram_stream(_unused), rotation)
        self.image = _Filter(video, out.image_stream(_unused), rotation)

    def __call__(self, path: Path, at: int, frame: av.VideoFrame) -> None:
        if at != self.picker.count:
            raise VideoError(path, f"frame {at} came where frame {self.picker.count} was due")
        if self.nbytes is None:         # held bytes estimated by the first picture (the budget is rough)
            self.nbytes = sum(plane.buffer_size for plane in frame.planes)
        self.picker.add(at, self.small(frame), frame, self.image, self.nbytes)


def _unused(_i: int, _frame: np.ndarray) -> None:
    raise AssertionError("filters built from a stream description only")


def decode_spans(path: str | Path, *, fps: float, streams: Sequence[FrameStream], spans: Sequence[Span],
                 keyframes: np.ndarray, first_pts: float, rotation: int = 0,
                 picking: KeyframeStream | None = None, threads: int = 1) -> int:
    """Hand each stream its frames from `spans`, and `picking` every frame of them; returns the pictures
    decoded.

    The stream must have a constant rate equal to `fps`, its first frame at `first_pts` (s) and its
    keyframes at the frame indices `keyframes`. `threads`: the decoder's (plans split over threads run
    one decoder of one thread per part). Raises VideoError when the decode is not clean.
    """
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            return _decode(path, container, fps, streams, spans, keyframes, first_pts, rotation, picking,
                           threads)
    except av.FFmpegError as exc:
        raise VideoError(path, f"seeking decode failed: {exc}") from exc


def _decode(path: Path, container: av.container.InputContainer, fps: float,  # noqa: PLR0913
            streams: Sequence[FrameStream], spans: Sequence[Span], keyframes: np.ndarray,
            first_pts: float, rotation: int, picking: KeyframeStream | None, threads: int) -> int:
    video = video_stream(container)
    video.thread_count = threads
    codec = video.codec_context
    codec.options = {"err_detect": "explode"}     # a damaged slice raises, not concealed: the one pass
    base = float(video.time_base)
    length_size = nal_length_size(codec)
    outputs = [(stream, set(stream.frames or ()), _Filter(video, stream, rotation)) for stream in streams]
    wanted = set().union(*(frames for _, frames, _ in outputs))
    pick = _Picking(video, picking, rotation) if picking is not None else None
    if pick is not None:
        length_size = None          # every picture is wanted

    def index(pts: int | None) -> int:
        if pts is None:
            raise VideoError(path, "a packet or frame without a timestamp")
        return round((pts * base - first_pts) * fps)

    size = (codec.width, codec.height)

    def deliver(frames: list[av.VideoFrame], span: Span) -> bool:
        """Hand out the span's wanted frames; True once the span's last frame has come."""
        done = False
        for frame in frames:
            if frame.is_corrupt:
                raise VideoError(path, "the decoder flagged a damaged frame")
            if (frame.width, frame.height) != size:     # the one pass scales it too, and says so
                raise VideoError(path, "the picture changes size mid-stream")
            at = index(frame.pts)
            if span.first <= at < span.first + span.count:
                if pick is not None:
                    pick(path, at, frame)
                for stream, frames_wanted, scale in outputs:
                    if at in frames_wanted:
                        stream.on_frame(at, scale(frame))
                        stream.delivered += 1
            done = done or at >= span.first + span.count - 1
        return done

    def packets_from(start: int) -> Iterator[av.Packet]:
        """The packets from a keyframe at or before frame `start`: the demuxer seeks to it exactly
        with an index (mp4, mkv); without one (MPEG-TS) it lands by timestamp, on any packet, so this
        steps back (1 s, 2 s, 4 s ...) until the first keyframe after landing is not past `start`."""
        target = first_pts + (start + 0.5) / fps
        back = 0.0
        while True:
            container.seek(round((target - back) / base), stream=video, backward=True)
            packets = container.demux(video)
            key = next((p for p in packets if p.is_keyframe and p.pts is not None), None)
            if key is None or index(key.pts) <= start or target - back <= first_pts:
                return itertools.chain([key] if key is not None else [], packets)
            back = max(1.0, 2 * back)

    decoded = 0
    for span in spans:
        start = int(decode_starts(np.array([span.first]), keyframes)[0])
        codec.flush_buffers()
        for packet in packets_from(start):
            if packet.size == 0:                       # the end of the file: flush the decoder
                deliver(codec.decode(None), span)
                break
            at = index(packet.pts)
            if at < start or (length_size is not None and at not in wanted
                              and disposable(bytes(packet), length_size)):
                continue
            decoded += 1
            if deliver(codec.decode(packet), span):
                break
    return decoded
