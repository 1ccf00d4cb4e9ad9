"""A corpus of bad and unusual inputs, generated with the real ffmpeg (never downloaded).

`build_corpus(root)` writes every case under `root` and returns them; each `Case` says what the decode
stage must do with it: "ok" (decoded, no warning), "warn" (decoded, with a warning recorded in the entry)
or "reject" (in the failure list, with a reason containing `reason`). Cases cost well under a second each
to make; the "very long" one is two hours at 1 fps and 32x24 pixels (a still image, a few kB).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FFMPEG = ("ffmpeg", "-nostdin", "-v", "error", "-y")


@dataclass(frozen=True)
class Case:
    name: str          # the video id
    rel: str           # path relative to the corpus root
    expect: str        # ok | warn | reject
    reason: str = ""   # a phrase of the warning (warn) or of the failure reason (reject)


def ffmpeg(*args: str) -> None:
    subprocess.run([*FFMPEG, *args], check=True)


def lavfi_video(path: Path, *, seconds: float = 1.0, size: str = "64x48", rate: str = "25",
                audio: bool = True, pattern: str = "testsrc", pix_fmt: str = "yuv420p",
                extra: tuple[str, ...] = ()) -> Path:
    """An H.264 mp4 of a test pattern, with a 440 Hz AAC tone unless `audio` is False (odd sizes need
    `pix_fmt` yuv444p)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = f"size={size}:rate={rate}:duration={seconds}"
    inputs = ["-f", "lavfi", "-i", f"{pattern}{':' if '=' in pattern else '='}{options}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    codecs = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", pix_fmt, *(["-c:a", "aac"] * audio)]
    ffmpeg(*inputs, *codecs, *extra, str(path))
    return path


def _truncated(path: Path) -> None:
    good = lavfi_video(path.with_name("full.tmp.mp4"), seconds=2)
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    good.unlink()


def _truncated_tail(path: Path) -> None:
    """The index first (faststart), then the stream cut: probe passes, decode stops early."""
    good = lavfi_video(path.with_name("full.tmp.mp4"), seconds=2, extra=("-movflags", "+faststart"))
    path.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    good.unlink()


def _corrupt_middle(path: Path) -> None:
    """Random bytes over the middle of an MPEG-TS stream (decoders conceal damaged frames)."""
    good = lavfi_video(path.with_name("full.tmp.ts"), seconds=2)
    data = bytearray(good.read_bytes())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid:mid + 4000] = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    good.unlink()


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())


def _audio_only(path: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(path))


def _vfr(path: Path) -> None:
    """Variable frame rate: timestamps stretched in the second half (gaps of 3 frame times)."""
    lavfi_video(path, seconds=2, audio=False, extra=(
        "-vf", "setpts='if(lt(N,25),N,25+(N-25)*3)/25/TB'", "-fps_mode", "vfr"))


def _browser_webm(path: Path) -> None:
    """What a browser's MediaRecorder writes: VP8 + Opus webm streamed to a pipe (no duration, no cues),
    the frames at irregular times (stalls growing from 33 to 110 ms)."""
    with path.open("wb") as out:
        subprocess.run([*FFMPEG, "-f", "lavfi", "-i", "testsrc=size=64x48:rate=30:duration=2",
                        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
                        "-vf", "setpts='(N+N*N/30)/30/TB'", "-fps_mode", "vfr", "-c:v", "libvpx",
                        "-c:a", "libopus", "-f", "webm", "-live", "1", "pipe:"], stdout=out, check=True)


def _streams_apart(path: Path, *, video_delay: float = 0.0, audio_delay: float = 0.0) -> None:
    """Video and audio that start at different times in the file (`-itsoffset`, video copied so that no
    frame fills the gap)."""
    plain = lavfi_video(path.with_name(path.stem + ".tmp.mp4"), audio=False)
    ffmpeg("-itsoffset", f"{video_delay:g}", "-i", str(plain), "-itsoffset", f"{audio_delay:g}",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100:duration=1",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", str(path))
    plain.unlink()


def _rotated(path: Path) -> None:
    plain = lavfi_video(path.with_name("plain.tmp.mp4"), size="64x48")
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(path))
    plain.unlink()


def _very_long(path: Path) -> None:
    """Two hours at 1 fps of a still 32x24 image: a few kB that decode must stream, not hold."""
    lavfi_video(path, seconds=7200, size="32x24", rate="1", audio=False, pattern="color=c=teal",
                extra=("-tune", "stillimage", "-g", "600"))


Maker = Callable[[Path], object]

CASES: list[tuple[Case, Maker]] = [
    (Case("plain", "plain.mp4", "ok"), lambda p: lavfi_video(p)),
    (Case("zero_bytes", "zero_bytes.mp4", "reject", "empty file"), lambda p: p.touch()),
    (Case("truncated", "truncated.mp4", "reject", "unreadable"), _truncated),
    (Case("truncated_tail", "truncated_tail.mp4", "warn", "cut or damaged"), _truncated_tail),
    (Case("corrupt_middle", "corrupt_middle.ts", "warn", "cut or damaged"), _corrupt_middle),
    (Case("random_bytes", "random_bytes.mp4", "reject", "unreadable"), _random_bytes),
    (Case("audio_only", "audio_only.m4a", "reject", "no video stream"), _audio_only),
    (Case("no_audio", "no_audio.mp4", "warn", "no audio stream"), lambda p: lavfi_video(p, audio=False)),
    (Case("single_frame", "single_frame.mp4", "warn", "fewer than one snippet"),
     lambda p: lavfi_video(p, seconds=0.04)),
    (Case("vfr", "vfr.mp4", "warn", "variable frame rate"), _vfr),
    (Case("browser_webm", "browser.webm", "warn", "variable frame rate"), _browser_webm),
    (Case("video_starts_late", "video_starts_late.mp4", "warn", "before the video"),
     lambda p: _streams_apart(p, video_delay=1.0)),
    (Case("audio_starts_late", "audio_starts_late.mp4", "warn", "after the video"),
     lambda p: _streams_apart(p, audio_delay=1.0)),
    (Case("rotated", "rotated.mp4", "ok"), _rotated),
    (Case("odd_size", "odd_size.mp4", "ok"), lambda p: lavfi_video(p, size="67x41", pix_fmt="yuv444p")),
    (Case("tiny", "tiny.mp4", "ok"), lambda p: lavfi_video(p, size="7x5", pix_fmt="yuv444p")),
    (Case("uhd_4k", "uhd_4k.mp4", "ok"), lambda p: lavfi_video(p, seconds=0.5, size="3840x2160")),
    (Case("very_long", "very_long.mp4", "warn", "no audio stream"), _very_long),
    (Case("ünï cödé/clip with spaces", "ünï cödé/clip with spaces.mp4", "ok"), lambda p: lavfi_video(p)),
    (Case("dir_like_video", "dir_like_video.mp4", "reject", "directory"), lambda p: p.mkdir()),
    (Case("missing", "missing.mp4", "reject", "file not found"), lambda p: None),
]


def build_corpus(root: Path) -> list[Case]:
    """Write every case of `CASES` under `root` (each maker gets its absolute path)."""
    root.mkdir(parents=True, exist_ok=True)
    for case, make in CASES:
        path = root / case.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        make(path)
    return [case for case, _ in CASES]
