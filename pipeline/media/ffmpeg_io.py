"""Decode with ffmpeg into memory: raw RGB frames streamed one at a time, and mono PCM audio.

Nothing is written to disk. ffmpeg applies the rotation stored in the file (its default), resamples to
a constant frame rate (so frame i is at i / fps, also for variable-frame-rate files) and scales.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ffmpeg
import numpy as np

from pipeline.errors import VideoError

QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error")


def fit_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(w, h) scaled down so the longer side is at most `max_side`, keeping the aspect ratio."""
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _last_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else "no message"


def iter_frames(path: str | Path, *, fps: float, width: int, height: int,
                messages: list[str] | None = None) -> Iterator[np.ndarray]:
    """Yield (height, width, 3) uint8 frames at a constant `fps`. Raises VideoError if ffmpeg fails.
    When it succeeds but complains (a damaged or cut stream), its error lines go into `messages`.

    Each frame is a read-only view of its own bytes object, so a caller may keep it without copying.
    """
    stream = (
        ffmpeg.input(str(path)).video
        .filter("fps", fps=f"{fps:.6f}")
        .filter("scale", width, height)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .global_args(*QUIET)
    )
    frame_bytes = width * height * 3
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(stream.compile(), stdout=subprocess.PIPE, stderr=err)
        try:
            while chunk := process.stdout.read(frame_bytes):
                if len(chunk) < frame_bytes:
                    break
                yield np.frombuffer(chunk, np.uint8).reshape(height, width, 3)
        finally:
            process.stdout.close()
            code = process.wait()
        err.seek(0)
        text = err.read()
        if code != 0:
            raise VideoError(path, f"ffmpeg could not decode the video stream: {_last_line(text)}")
        if messages is not None and text.strip():
            messages.extend(text.decode("utf-8", "replace").strip().splitlines())


def read_audio(path: str | Path, rate: int) -> np.ndarray:
    """Mono int16 PCM at `rate` Hz of the first audio stream. Raises VideoError if ffmpeg fails."""
    stream = (
        ffmpeg.input(str(path)).audio
        .output("pipe:", format="s16le", acodec="pcm_s16le", ac=1, ar=rate)
        .global_args(*QUIET)
    )
    try:
        out, _ = stream.run(capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        raise VideoError(path, f"ffmpeg could not decode the audio stream: {_last_line(exc.stderr)}") from exc
    return np.frombuffer(out, np.int16).copy()
