"""Helpers shared by the benchmark scripts: test clips, timing, the machine line, Markdown tables."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from pipeline.manifests.format import Manifest, VideoRecord

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
K = TypeVar("K")


def make_clip(path: Path, *, width: int, height: int, seconds: float, gop: int, fps: int = 25) -> Path:
    """An H.264 (keyframe every `gop` frames, no scene-cut keyframes) + AAC clip of ffmpeg's testsrc2."""
    if path.is_file():
        return path
    video = f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}"
    audio = f"sine=frequency=440:sample_rate=44100:duration={seconds}"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", video, "-f", "lavfi",
                    "-i", audio, "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-c:a", "aac",
                    "-shortest", str(path)], check=True)
    return path


def clip_manifest(work: Path, n: int, seconds: float, **size: int) -> Manifest:
    """`n` clips of `make_clip` (640x360, 2 s GOP unless `size` says otherwise) in `work`, each 40 ms longer
    than the last (distinct files), as a one-class manifest."""
    records = []
    for i in range(n):
        make_clip(work / f"c{i:03d}.mp4", width=size.get("width", 640), height=size.get("height", 360),
                  seconds=seconds + 0.04 * i, gop=size.get("gop", 50))
        records.append(VideoRecord(f"c{i:03d}", f"c{i:03d}.mp4", "x"))
    return Manifest(records, ["x"])


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of `repeats` calls, seconds (the least disturbed by other processes)."""
    return min(timed(fn)[0] for _ in range(repeats))


def fastest_in_turn(fns: dict[K, Callable[[], Any]], repeats: int) -> dict[K, float]:
    """The fastest of `repeats` calls of each function, seconds, the functions called in turn each
    round: a burst of load from another tenant of the VM then slows one call of each, not every call
    of one, so the ratios between them hold."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for key, fn in fns.items():
            best[key] = min(best[key], timed(fn)[0])
    return best


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def machine_line() -> str:
    """Date, cores, CPU, GPU, versions and commit: what a result table was measured on."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{time.strftime('%Y-%m-%d %H:%M')}, {len(os.sched_getaffinity(0))} cores ({cpu_model()}), "
            f"{gpu}, Python {platform.python_version()}, torch {torch.__version__}, commit {commit()}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; floats are printed as they come (format them before)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def dir_bytes(path: Path) -> tuple[int, int]:
    """(bytes, files) of everything under `path`."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)
