"""Shared fixtures: real media made with the real ffmpeg, so no test needs downloaded data."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

MAX_TEST_WORKERS = 4    # xdist workers for `-n auto` (setup.cfg): each may hold a torch model, a Dask
                        # cluster or a DVC run; more than 4 gains little, as the two demo files dominate


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: the cores this process may use (not xdist's physical-core count, which a 2-vCPU VM can
    report as 1), at most MAX_TEST_WORKERS; PYTEST_XDIST_AUTO_NUM_WORKERS overrides it."""
    override = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    return int(override) if override else min(MAX_TEST_WORKERS, len(os.sched_getaffinity(0)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with `slow` tests first (in their order, then the rest in theirs): side by side, the two
    demo files then start at once, instead of one of them starting minutes in and running on alone
    while the other workers are done."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


# Side by side, each worker's torch gets its share of the cores: n workers x all cores of OpenMP threads
# spin against each other. Tests that spawn processes (Dask workers, DVC stages) set their own.
_SIDE_BY_SIDE = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _SIDE_BY_SIDE > 1:
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // _SIDE_BY_SIDE))


def encode_test_video(path: Path, *, seconds: float = 2.0, fps: str = "25", size: str = "160x120",
                      audio: bool = True, rotate: int | None = None, pattern: str = "testsrc",
                      gop: int | None = None, preset: str = "ultrafast", video_delay_s: float = 0.0) -> Path:
    """An H.264 mp4 of an ffmpeg test pattern (+ a 440 Hz tone), optionally tagged with a rotation.

    `gop` fixes the keyframe interval (frames); `preset` "veryfast" adds B-frames (ultrafast has none);
    `video_delay_s` shifts the video packets that much later (a stream copy: no frame is added).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
           "-i", f"{pattern}=size={size}:rate={fps}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    cmd += ["-c:v", "libx264", "-preset", preset, "-pix_fmt", "yuv420p"]
    cmd += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0"] if gop else []
    cmd += ["-c:a", "aac"] if audio else []
    subprocess.run([*cmd, str(path)], check=True)
    if video_delay_s:
        delayed = path.with_name(path.stem + ".delay" + path.suffix)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path),
                        "-itsoffset", f"{video_delay_s:g}", "-i", str(path), "-map", "1:v",
                        *(["-map", "0:a"] if audio else []), "-c", "copy", str(delayed)], check=True)
        delayed.replace(path)
    if rotate is not None:
        rotated = path.with_name(path.stem + ".rot" + path.suffix)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(path), "-c", "copy",
                        "-metadata:s:v:0", f"rotate={rotate}", str(rotated)], check=True)
        rotated.replace(path)
    return path


@pytest.fixture
def make_video(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "clip.mp4", **kwargs: object) -> Path:
        return encode_test_video(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """For tests of tiny models: one thread is faster than two, and steady on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], Path]]:
    """`tmp_path_factory.mktemp` for a module's fixtures, removed once the module's tests are done.

    The module fixtures hold full-size checkpoints (VGG-Face's 580 MB, twice) and whole DVC projects;
    kept to the end of the session they added up to 9 GB, more than a CI machine's disk may have free.
    (A test's own `tmp_path` goes when the test passes: `tmp_path_retention_policy` in setup.cfg.)
    """
    made: list[Path] = []

    def mktemp(name: str) -> Path:
        made.append(tmp_path_factory.mktemp(name))
        return made[-1]

    yield mktemp
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201  (tests/tiny_run.py: TinyRun)
    """Demo clips, caches and trained VAANet / CAAN heads shared by the predict and report tests."""
    from tiny_run import build

    return build(tmp_path_factory.mktemp("tiny_run"))
