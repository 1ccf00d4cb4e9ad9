"""Decode with ffmpeg into memory: raw frame streams read from pipes, and mono PCM audio.

Nothing is written to disk. ffmpeg applies the rotation stored in the file (its default), resamples to
a constant frame rate (so frame i is at i / fps, also for variable-frame-rate files), keeps only the
frames each output asks for (`select`) and scales them, so Python receives just those frames at their
final size. One ffmpeg process serves every output: it decodes every frame of the video once, in order
(decoding in-process, only stretches of it or all of it, is pipeline/media/seek_decode.py).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import ffmpeg
import numpy as np

from pipeline.errors import VideoError
from pipeline.media.keyframes import HISTOGRAM_FLAGS, HISTOGRAM_SIDE, SlicePicker

QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")
PASS_LOG = ("-nostdin", "-hide_banner", "-loglevel", "level+warning")  # lines tagged [error], [warning]
ERROR_TAGS = ("[error] ", "[fatal] ", "[panic] ")                    # what loglevel error printed before
CHANGED_PICTURE = "Changing video frame properties on the fly"         # libavfilter's buffer source, 5.1
PICTURE_CHANGE_NOTE = ("the picture changes size or format mid-stream: every frame is scaled to the size "
                       "of the first (another aspect ratio is stretched)")
CHANNELS = {"rgb24": 3, "gray": 1}


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled down so the longer side is at most `max_side`, keeping the aspect ratio."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def last_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "no message"


@dataclass
class FrameStream:
    """One output: the frames with the given indices (every frame when None), scaled to width x height.

    `on_frame(index, frame)` receives them in order, from a reader thread; a frame is a read-only
    (height, width, channels) uint8 view of its own bytes, so the callback may keep it without copying.
    `crop` takes the top-left width x height pixels instead of scaling (a cheap frame counter).
    """

    width: int
    height: int
    frames: Sequence[int] | None
    on_frame: Callable[[int, np.ndarray], None]
    pix_fmt: str = "rgb24"
    scale_flags: str = "bicubic"
    crop: bool = False
    delivered: int = 0


@dataclass
class KeyframeStream:
    """Every frame, for `picker`: a small copy for its histogram and, for the chosen frames only where
    the decoder allows (in-process), the frame scaled to size x size with `scale_flags`."""

    size: int
    picker: SlicePicker
    scale_flags: str = "area"

    def histogram_stream(self, on_frame: Callable[[int, np.ndarray], None]) -> FrameStream:
        return FrameStream(HISTOGRAM_SIDE, HISTOGRAM_SIDE, None, on_frame, scale_flags=HISTOGRAM_FLAGS)

    def image_stream(self, on_frame: Callable[[int, np.ndarray], None]) -> FrameStream:
        return FrameStream(self.size, self.size, None, on_frame, scale_flags=self.scale_flags)


class _Pairs:
    """Joins the histogram copy and the keyframe-size image of each frame, which ffmpeg writes to two
    pipes read by two threads, and hands them to the picker in frame order (each pipe is in order, so
    the pairs complete in order)."""

    def __init__(self, picker: SlicePicker) -> None:
        self.picker = picker
        self.lock = threading.Lock()
        self.small: dict[int, np.ndarray] = {}
        self.image: dict[int, np.ndarray] = {}

    def on_small(self, i: int, frame: np.ndarray) -> None:
        with self.lock:
            if i in self.image:
                self.picker.add(i, frame, self.image.pop(i), _same)
            else:
                self.small[i] = frame

    def on_image(self, i: int, frame: np.ndarray) -> None:
        with self.lock:
            if i in self.small:
                self.picker.add(i, self.small.pop(i), frame, _same)
            else:
                self.image[i] = frame


def _same(frame: np.ndarray) -> np.ndarray:
    return frame


def _select_expression(frames: Sequence[int]) -> str:
    """`select` keeping these sorted frame indices, as one `between` per run of consecutive ones."""
    frames = np.asarray(frames, np.int64)
    breaks = np.flatnonzero(np.diff(frames) != 1)
    starts = np.r_[frames[0], frames[breaks + 1]]
    stops = np.r_[frames[breaks], frames[-1]]
    return "+".join(f"between(n,{a},{b})" for a, b in zip(starts, stops, strict=True))


def _command(path: Path, fps: float, streams: Sequence[FrameStream], fds: Sequence[int],
             threads: int, video_stream: int) -> list[str]:
    # reinit_filter 0: a picture size or format that changes mid-stream (pieces joined, a capture that
    # adapts its resolution) goes on through the same filters, whose `scale` takes each size, so `select`
    # and `fps` keep counting frames; rebuilt filters would count from 0 again and select other frames
    source = ffmpeg.input(str(path), reinit_filter=0, **({"threads": threads} if threads else {}))
    source = source.video if video_stream < 0 else source[str(video_stream)]
    source = source.filter("fps", fps=f"{fps:.6f}")
    branches = [source]
    if len(streams) > 1:
        split = source.split()
        branches = [split[i] for i in range(len(streams))]
    outputs = []
    for branch, stream, fd in zip(branches, streams, fds, strict=True):
        if stream.frames is not None:
            branch = branch.filter("select", _select_expression(stream.frames))
        if stream.crop:
            branch = branch.filter("crop", stream.width, stream.height, 0, 0)
        else:
            branch = branch.filter("scale", stream.width, stream.height, flags=stream.scale_flags)
        outputs.append(branch.output(f"pipe:{fd}", format="rawvideo", pix_fmt=stream.pix_fmt))
    limits = ("-filter_complex_threads", str(threads)) if threads else ()
    return ffmpeg.merge_outputs(*outputs).global_args(*PASS_LOG, "-vsync", "passthrough", *limits).compile()


def _read(pipe: BinaryIO, stream: FrameStream, errors: list[BaseException]) -> None:
    """Read one output to its end, handing each frame to the stream's callback (in this thread)."""
    shape = (stream.height, stream.width, CHANNELS[stream.pix_fmt])
    size = int(np.prod(shape))
    indices = iter(stream.frames) if stream.frames is not None else None
    try:
        with pipe:
            while len(chunk := pipe.read(size)) == size:
                index = next(indices, None) if indices is not None else stream.delivered
                if index is None:
                    break
                stream.on_frame(int(index), np.frombuffer(chunk, np.uint8).reshape(shape))
                stream.delivered += 1
    except BaseException as exc:  # noqa: BLE001  (re-raised by the caller, after ffmpeg has exited)
        errors.append(exc)


def decode_streams(path: str | Path, *, fps: float, streams: Sequence[FrameStream], threads: int = 0,
                   messages: list[str] | None = None, video_stream: int = -1,
                   keyframes: KeyframeStream | None = None, notes: list[str] | None = None) -> None:
    """Run one ffmpeg writing every stream to its own pipe; each stream's `delivered` counts its frames.

    Every frame of the file's stream `video_stream` (its index; -1: ffmpeg's first video stream) is decoded
    in order, resampled to `fps`. `keyframes` gets every frame, as its histogram copy and its image (ffmpeg
    cannot be asked afterwards for the one frame chosen). Raises VideoError if ffmpeg fails; when it
    succeeds but complains (a damaged or cut stream), its error lines go into `messages`. A picture that
    changes mid-stream (ffmpeg's only warning read) puts PICTURE_CHANGE_NOTE into `notes`.
    """
    path = Path(path)
    if keyframes is not None:
        pairs = _Pairs(keyframes.picker)
        streams = [*streams, keyframes.histogram_stream(pairs.on_small),
                   keyframes.image_stream(pairs.on_image)]
    pipes = [os.pipe() for _ in streams]
    cmd = _command(path, fps, streams, [w for _, w in pipes], threads, video_stream)
    errors: list[BaseException] = []
    with tempfile.TemporaryFile() as err:
        try:
            process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                       pass_fds=[w for _, w in pipes])
        finally:
            for _, w in pipes:
                os.close(w)
        readers = [threading.Thread(target=_read, args=(os.fdopen(r, "rb"), s, errors), daemon=True)
                   for (r, _), s in zip(pipes, streams, strict=True)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        code = process.wait()
        err.seek(0)
        text = err.read()
    if errors:
        raise errors[0]
    lines = text.decode("utf-8", "replace").strip().splitlines()
    failures = [_untagged(line) for line in lines if any(tag in line for tag in ERROR_TAGS)]
    if code != 0:
        reason = failures[-1] if failures else last_line(text)
        raise VideoError(path, f"ffmpeg could not decode the video stream: {reason}")
    if messages is not None:
        messages.extend(failures)
    if notes is not None and any(CHANGED_PICTURE in line for line in lines):
        notes.append(PICTURE_CHANGE_NOTE)


def _untagged(line: str) -> str:
    """A log line as loglevel error printed it, without its level tag."""
    for tag in ERROR_TAGS:
        line = line.replace(tag, "", 1)
    return line


@dataclass(frozen=True)
class DecodedAudio:
    """Mono int16 PCM of one stream at one rate, and how many of the decoded stream's sample values (all
    channels, before mixing and resampling) were NaN or +-inf: those are decoded as silence (0)."""

    samples: np.ndarray
    nan: int = 0
    inf: int = 0

    def nonfinite_warning(self) -> str:
        """What the entry's warnings say about the non-finite values ("" when there were none)."""
        if not (self.nan or self.inf):
            return ""
        return (f"audio: {self.nan} NaN and {self.inf} inf sample value(s) in the decoded stream, "
                "decoded as silence (0)")


# Counts the non-finite values per channel as they come out of the decoder. asetnsamples makes frames of
# ~1M samples so that ametadata prints a few lines (the counts are cumulative), not one set per packet.
_COUNTS = re.compile(rb"^lavfi\.astats\.(\d+)\.Number[ _]of[ _](NaNs|Infs)=(\d+)", re.MULTILINE)
_PRINTED = re.compile(rb"^(frame:|lavfi\.astats\.).*\n?", re.MULTILINE)     # ametadata's lines
# NaN and +-inf become 0 before any mixing or resampling could spread them to the samples around them
_SILENCE_NONFINITE = "if(isnan(val(ch))+isinf(val(ch)),0,val(ch))"


def read_audio(path: str | Path, rate: int, stream: int, *, check: bool = False,
               clean: bool = False) -> DecodedAudio:
    """Mono int16 PCM at `rate` Hz of the file's audio stream `stream` (its index: one track, never every
    track interleaved), each sample at its timestamp's place. Raises VideoError if ffmpeg fails.

    Non-finite sample values (a float stream can store NaN and inf) would come out of ffmpeg's int16
    conversion as full-scale clicks, spread by resampling over the samples around them. `check` counts
    them in the same ffmpeg run (a second output, so the samples of a file without them are exactly
    those of ffmpeg's own command) and, where there are any, decodes again with them silenced; `clean`
    silences them without counting (a stream already counted, at another rate)."""
    source = ffmpeg.input(str(path))[str(stream)]
    audio = source.filter("aeval", exprs=_SILENCE_NONFINITE, c="same") if clean else source
    # samples where their timestamps say: a gap in the stream (pieces joined, packets lost) is filled
    # with silence and an overlap dropped, as swresample does past `min_hard_comp` (0.1 s). Without it
    # ffmpeg joins the samples end to end, and everything after a gap plays early against the
    # pictures. The start is left alone (no `first_pts`): decode puts it on the video's clock.
    pcm = audio.filter("aresample", **{"async": 1}).output("pipe:", format="s16le", acodec="pcm_s16le",
                                                           ac=1, ar=rate)
    if check:
        stats = (source.filter("asetnsamples", n=1 << 20, p=0)
                 .filter("astats", metadata=1, reset=0, measure_perchannel="Number_of_NaNs+Number_of_Infs",
                         measure_overall="none")
                 .filter("ametadata", mode="print", file="pipe:2").output("-", format="null"))
        pcm = ffmpeg.merge_outputs(pcm, stats)
    try:
        out, err = pcm.global_args(*QUIET).run(capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        reason = last_line(_PRINTED.sub(b"", exc.stderr))
        raise VideoError(path, f"ffmpeg could not decode the audio stream: {reason}") from exc
    if check:
        last = {(channel, kind): int(n) for channel, kind, n in _COUNTS.findall(err)}
        nan = sum(n for (_, kind), n in last.items() if kind == b"NaNs")
        inf = sum(n for (_, kind), n in last.items() if kind == b"Infs")
        if nan or inf:
            return DecodedAudio(read_audio(path, rate, stream, clean=True).samples, nan, inf)
    return DecodedAudio(np.frombuffer(out, np.int16).copy())
