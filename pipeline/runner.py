"""Map a function over groups of videos on a Dask cluster; the calling process writes the results.

    driver (this process)                        workers (LocalCluster, or an existing scheduler)
    ──────────────────────                       ────────────────────────────────────────────────
    submit a bounded window of tasks, ───────>   func(group, **kwargs) -> one Outcome per video:
    each a group of 1..videos_per_task videos    ("ok", result) or ("error", reason of a VideoError)
    as each finishes, per video:      <───────   an unexpected exception is retried `retries` times;
    on_result(...) (the single cache writer),    a dead worker's tasks are rerun elsewhere by Dask
    progress bar, summary and failure list

Every task is a group: a per-video function runs through `each_video` (groups of one, as decode and faces
do), a group function (feature extraction) batches across its videos. A VideoError stays with its video;
a group that fails unexpectedly is rerun one video per task, so the crash is pinned to the video causing
it and the others of its group are still written. Only the driver touches output files, so no two
processes ever write one HDF5 file.
"""

from __future__ import annotations

import csv
import ctypes
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import dask
import psutil
from dask.distributed import Client, Future, LocalCluster, as_completed
from tqdm import tqdm

from pipeline.errors import VideoError
from pipeline.worker_env import restore_user_environ, spawn_environ

LOCAL_WORKER_ENV = "VEMO_LOCAL_CLUSTER_WORKER"   # set in LocalCluster workers: they may share out the GPUs
LOCAL_HTTP_ADDRESS = "127.0.0.1:0"   # the scheduler's HTTP routes (health, metrics; no dashboard is built):
                                     # any free port on this machine only. Dask's default, 8787 on every
                                     # interface, warned "Port 8787 is already in use" whenever two stages,
                                     # or a stage and a notebook's cluster, ran at once


@dataclass(frozen=True)
class ClusterConfig:
    scheduler: str | None = None      # address of a running scheduler; None starts a LocalCluster
    workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    retries: int = 1                  # reruns of a task that failed unexpectedly (not a VideoError)
    allocator: str = "jemalloc"       # LocalCluster workers' malloc: jemalloc where installed, or system


@dataclass(frozen=True)
class VideoTask:
    video_id: str
    path: str


@dataclass(frozen=True)
class Failure:
    video_id: str
    path: str
    reason: str


Outcome = tuple[str, Any]
"""One video's result on a worker: ("ok", value) or ("error", reason); a VideoError travels as data, so
Dask never retries a deterministic failure (and VideoError itself does not survive pickling)."""


@dataclass
class StageSummary:
    stage: str
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)

    def fail(self, video_id: str, path: str, reason: str) -> None:
        self.failed += 1
        self.failures.append(Failure(video_id, path, reason))
        print(f"[{self.stage}] FAILED {path}: {reason}", flush=True)

    def counts(self) -> dict[str, int]:
        return {"total": self.total, "done": self.done, "skipped": self.skipped, "failed": self.failed}

    def exit_code(self) -> int:
        """0 when at least one video is (now or already) done; a stage that produced nothing fails."""
        return 0 if self.done + self.skipped > 0 else 1

    def line(self) -> str:
        return (f"[{self.stage}] {self.done} done, {self.skipped} skipped (cached), {self.failed} failed "
                f"of {self.total} videos in {self.seconds:.1f} s")

    def write(self, metrics_path: Path, failures_path: Path) -> None:
        """Counts as a DVC metric (deterministic), failures as CSV with the reason per video."""
        metrics_path.parent.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(self.counts(), indent=2) + "\n", encoding="utf-8")
        with failures_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["video_id", "path", "reason"])
            writer.writeheader()
            writer.writerows(asdict(x) for x in sorted(self.failures, key=lambda x: x.video_id))


@contextmanager
def local_cluster(cfg: ClusterConfig) -> Iterator[LocalCluster]:
    """`cfg.workers` worker processes named 0..workers-1, each with `threads_per_worker` BLAS threads.

    Their allocator and glibc's trim threshold are set as the process starts (`pipeline.worker_env`:
    jemalloc where installed, not Dask's MALLOC_TRIM_THRESHOLD_), and the workers' statistical profiler
    is off: it feeds the dashboard, which these clusters do not start, and every 10 ms it walked the
    stacks of the running tasks, 3.6 s of CPU a worker over a 40 s AlexNet stage (bench/README.md,
    deliverable 3).
    """
    threads = str(cfg.threads_per_worker)
    spawn = {f"distributed.nanny.pre-spawn-environ.{name}": value
             for name, value in spawn_environ(cfg.allocator).items()}
    with dask.config.set({**spawn, "distributed.worker.profile.enabled": False}), LocalCluster(
        n_workers=cfg.workers, threads_per_worker=cfg.threads_per_worker, processes=True,
        memory_limit=cfg.memory_limit, dashboard_address=None, silence_logs=logging.ERROR,
        scheduler_kwargs={"dashboard_address": LOCAL_HTTP_ADDRESS},
        env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, LOCAL_WORKER_ENV: "1"},
    ) as cluster:
        restore_user_environ()
        yield cluster


@contextmanager
def dask_client(cfg: ClusterConfig) -> Iterator[Client]:
    """A client on the given scheduler, or on a LocalCluster of worker processes that ends with it."""
    if cfg.scheduler:
        with Client(cfg.scheduler) as client:
            yield client
        return
    with local_cluster(cfg) as cluster, Client(cluster) as client:
        yield client


def video_outcome(call: Callable[[], Any]) -> Outcome:
    """Worker side: `call()` as an Outcome; a VideoError becomes ("error", reason), anything else raises."""
    try:
        return "ok", call()
    except VideoError as exc:
        return "error", exc.reason


def each_video(func: Callable[..., Any], group: Sequence[VideoTask], **kwargs: Any) -> list[Outcome]:
    """A per-video `func(video_id, path, **kwargs)` as a group function: one call per video."""
    return [video_outcome(partial(func, task.video_id, task.path, **kwargs)) for task in group]


def _glibc_trim() -> Callable[[int], object]:
    """glibc's `malloc_trim`, or a no-op where the C library is not glibc."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda _pad: None


class TrimWhenGrown:
    """Hands a worker's freed memory back to the OS after a task once its RSS is `slack` bytes above what
    it was after the last trim (or the first task): the fallback where workers run glibc's allocator
    (`pipeline.worker_env`). Without Dask's MALLOC_TRIM_THRESHOLD_ glibc keeps what the arenas once
    held, and an AlexNet worker's peak RSS grew from 1.0 to 2.0 GiB over 1000 videos (bench/README.md,
    deliverable 5). Trimming after every task made the
    AlexNet stage 12% slower (each task then faults its forward pass's buffers in anew); trimming past
    256 MiB of growth costs about 5% there (36.5 s vs 34.4 s, 400 videos, runs alternated) and keeps
    the peak within 1.25 GiB at 1000 videos."""

    def __init__(self, slack: int = 256 << 20, trim: Callable[[int], object] | None = None) -> None:
        self.slack, self.trim = slack, trim or _glibc_trim()
        self.base: int | None = None

    def __call__(self) -> bool:
        """After a task: trims (and says so) when the RSS has grown past the slack."""
        rss = psutil.Process().memory_info().rss
        if self.base is not None and rss > self.base + self.slack:
            self.trim(0)
            self.base = psutil.Process().memory_info().rss
            return True
        if self.base is None:
            self.base = rss
        return False


_trim_when_grown = TrimWhenGrown()


def _run_group(func: Callable[..., list[Outcome]], group: list[VideoTask],
               kwargs: dict[str, Any]) -> list[Outcome]:
    try:
        outcomes = list(func(group, **kwargs))
    finally:
        _trim_when_grown()
    if len(outcomes) != len(group):
        raise RuntimeError(f"{func!r} returned {len(outcomes)} outcomes for {len(group)} videos")
    return outcomes


def chunk(tasks: Sequence[VideoTask], size: int) -> list[list[VideoTask]]:
    """Consecutive groups of `size` tasks (the last may be smaller)."""
    if size < 1:
        raise ValueError(f"videos_per_task must be >= 1, not {size}")
    return [list(tasks[i:i + size]) for i in range(0, len(tasks), size)]


def map_groups(
    client: Client,
    func: Callable[..., list[Outcome]],
    tasks: Sequence[VideoTask],
    on_result: Callable[[VideoTask, Any], str | None],
    summary: StageSummary,
    *,
    videos_per_task: int = 1,
    kwargs: dict[str, Any] | None = None,
    retries: int = 1,
    max_in_flight: int | None = None,
) -> StageSummary:
    """Run `func(group, **kwargs)` on consecutive groups of up to `videos_per_task` tasks; it returns one
    Outcome per video of the group. `on_result` stores each video's value in the driver and returns a
    failure reason or None. At most `max_in_flight` groups (default 2 x the cluster's threads) are
    submitted at a time, so the results waiting in memory are bounded whatever the number of videos.
    Failures are recorded in `summary`, never raised; the bar and the summary count videos."""
    start = time.perf_counter()
    window = max_in_flight or 2 * max(1, sum(client.nthreads().values()))
    pending = chunk(tasks, videos_per_task)[::-1]
    owner: dict[str, list[VideoTask]] = {}

    def submit() -> Future:
        group = pending.pop()
        future = client.submit(_run_group, func, group, kwargs or {}, pure=False, retries=retries,
                               key=f"{summary.stage}-{group[0].video_id}-{time.monotonic_ns()}")
        owner[future.key] = group
        return future

    running = as_completed([submit() for _ in range(min(window, len(pending)))])
    with tqdm(total=len(tasks), desc=summary.stage, unit="video", mininterval=1.0) as bar:
        for future in running:
            group = owner.pop(future.key)
            rerun = _settle(future, group, on_result, summary)
            future.release()
            pending.extend([task] for task in reversed(rerun))
            bar.update(len(group) - len(rerun))
            if pending:
                running.add(submit())
    summary.seconds += time.perf_counter() - start
    return summary


def map_videos(
    client: Client,
    func: Callable[..., Any],
    tasks: Sequence[VideoTask],
    on_result: Callable[[VideoTask, Any], str | None],
    summary: StageSummary,
    *,
    kwargs: dict[str, Any] | None = None,
    retries: int = 1,
    max_in_flight: int | None = None,
) -> StageSummary:
    """`map_groups` of a per-video `func(video_id, path, **kwargs)`, one video per task."""
    return map_groups(client, partial(each_video, func), tasks, on_result, summary, videos_per_task=1,
                      kwargs=kwargs, retries=retries, max_in_flight=max_in_flight)


def _settle(future: Future, group: list[VideoTask], on_result: Callable[[VideoTask, Any], str | None],
            summary: StageSummary) -> list[VideoTask]:
    """Record the outcome of every video of a finished group; returns the videos to rerun one by one
    (all of a group of several that failed unexpectedly), else []."""
    try:
        outcomes = future.result()
    except Exception as exc:  # noqa: BLE001 - a failed task is recorded (or split), the stage goes on
        if len(group) > 1:
            print(f"[{summary.stage}] a task of {len(group)} videos failed ({type(exc).__name__}: {exc}); "
                  "rerunning them one per task", flush=True)
            return group
        traceback.print_exception(exc)
        outcomes = [("error", f"unexpected {type(exc).__name__}: {exc}")]
    for task, (status, value) in zip(group, outcomes, strict=True):
        _record(task, status, value, on_result, summary)
    return []


def _record(task: VideoTask, status: str, value: Any, on_result: Callable[[VideoTask, Any], str | None],
            summary: StageSummary) -> None:
    try:
        reason = on_result(task, value) if status == "ok" else value
    except Exception as exc:  # noqa: BLE001 - any failure of one video is recorded, the stage goes on
        reason = f"unexpected {type(exc).__name__}: {exc}"
        traceback.print_exception(exc)
    if reason is None:
        summary.done += 1
    else:
        summary.fail(task.video_id, task.path, reason)
