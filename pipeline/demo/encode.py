"""Writing one clip: raw RGB frames piped into ffmpeg, the sound read from a temporary raw file.

Encoder settings are fixed and bit-exact, so the same frames and samples give the same bytes:
H.264 (libx264, one thread, fixed preset and CRF, yuv420p), AAC (ffmpeg's native encoder, mono, 44.1 kHz),
``+bitexact`` on the muxer and both encoders, no metadata copied.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import ffmpeg
import numpy as np

from pipeline.demo.clip import SAMPLE_RATE

VIDEO_ARGS = {"vcodec": "libx264", "preset": "veryfast", "crf": 23, "pix_fmt": "yuv420p", "threads": 1}
AUDIO_ARGS = {"acodec": "aac", "audio_bitrate": "96k", "ar": SAMPLE_RATE, "ac": 1}
BITEXACT_ARGS = {"fflags": "+bitexact", "flags:v": "+bitexact", "flags:a": "+bitexact", "map_metadata": -1}


def ffmpeg_command(
    out: Path, *, width: int, height: int, fps: str, audio_file: Path | None
) -> list[str]:
    """The ffmpeg command line: video from stdin, audio (when given) from a raw float32 file."""
    video = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps)
    streams = [video]
    kwargs = {**VIDEO_ARGS, **BITEXACT_ARGS}
    if audio_file is not None:
        streams.append(ffmpeg.input(str(audio_file), format="f32le", ar=SAMPLE_RATE, ac=1))
        kwargs.update(AUDIO_ARGS)
    else:
        kwargs["an"] = None
    output = ffmpeg.output(*streams, str(out), format="mp4", **kwargs)
    return output.global_args("-hide_banner", "-loglevel", "error").overwrite_output().compile()


def encode_clip(
    out: Path, frames: Iterable[np.ndarray], audio: np.ndarray | None, *, width: int, height: int, fps: str
) -> None:
    """Encode ``frames`` (RGB uint8, (height, width, 3)) and ``audio`` (float32 mono, or None) to ``out``."""
    with tempfile.TemporaryDirectory(prefix="demo-audio-") as tmp:
        audio_file = None
        if audio is not None:
            audio_file = Path(tmp) / "audio.f32"
            audio.astype("<f4").tofile(audio_file)
        cmd = ffmpeg_command(out, width=width, height=height, fps=fps, audio_file=audio_file)
        _run(cmd, frames, (height, width, 3), out)


def _run(cmd: list[str], frames: Iterable[np.ndarray], shape: tuple[int, int, int], out: Path) -> None:
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            for frame in frames:
                if frame.shape != shape or frame.dtype != np.uint8:
                    raise ValueError(f"{out}: frame {frame.shape} {frame.dtype}, expected {shape} uint8")
                proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        except BrokenPipeError:
            pass
        finally:
            proc.stdin.close()
            code = proc.wait()
        log.seek(0)
        message = log.read().decode("utf-8", "replace").strip()
    if code != 0:
        raise RuntimeError(f"ffmpeg failed writing {out} (exit {code}): {message}")
