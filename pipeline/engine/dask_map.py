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
processes ever write one HDF5 file. A worker that runs other code than the driver refuses every task
(`code_identity`), and the stage stops with one line.
"""

from __future__ import annotations

import ctypes
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import psutil
from dask.distributed import Client, Future, as_completed
from tqdm import tqdm

from pipeline.engine.code_identity import WorkerMismatch, check_worker, code_identity
from pipeline.engine.shipping import Shipment, pack, run_unpacked
from pipeline.engine.summary import StageSummary
from pipeline.engine.watch import WorkerWatch
from pipeline.errors import BadEntry, CacheUnavailable, VideoError


@dataclass(frozen=True)
class VideoTask:
    video_id: str
    path: str
    source: str = ""    # the file's fingerprint when the stage listed it (`cached.source_fingerprint`)


Outcome = tuple[str, Any]
"""One video's result on a worker: ("ok", value) or ("error", reason); a VideoError travels as data, so
Dask never retries a deterministic failure (and VideoError itself does not survive pickling)."""


def video_outcome(call: Callable[[], Any]) -> Outcome:
    """Worker side: `call()` as an Outcome; a VideoError becomes ("error", reason), anything else raises."""
    try:
        return "ok", call()
    except VideoError as exc:
        return "error", exc.reason


def each_video(func: Callable[..., Any], group: Sequence[VideoTask], **kwargs: Any) -> list[Outcome]:
    """A per-video `func(video_id, path, **kwargs)` as a group function: one call per video."""
    return [video_outcome(partial(func, task.video_id, task.path, **kwargs)) for task in group]


def per_video(func: Callable[..., Any]) -> Callable[..., list[Outcome]]:
    """The group function of a per-video `func(video_id, path, **kwargs)` (tasks of one video each)."""
    return partial(each_video, func)


def _glibc_trim() -> Callable[[int], object]:
    """glibc's `malloc_trim`, or a no-op where the C library is not glibc."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda _pad: None


class TrimWhenGrown:
    """Hands a worker's freed memory back to the OS after a task once its RSS is `slack` bytes above what
    it was after the last trim (or the first task): the fallback where workers run glibc's allocator
    (`worker_env`). Without Dask's MALLOC_TRIM_THRESHOLD_ glibc keeps what the arenas once held, and an
    AlexNet worker's peak RSS doubles over 1000 videos. Trimming after every task would fault each
    forward pass's buffers in anew (12% slower); past 256 MiB of growth it costs about 5% and bounds the
    peak (bench/README.md, deliverable 5)."""

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


def _run_group(identity: dict[str, str], func: Callable[..., list[Outcome]], group: list[VideoTask],
               kwargs: dict[str, Any], files: dict[str, bytes] | None = None) -> list[Outcome]:
    """Worker side: `func(group, **kwargs)`, once this worker is known to run the driver's code and
    libraries (`identity`, `code_identity`); a shipped task's func takes the shipped `files` first (Dask
    hands them over as bytes: futures in a dict argument are resolved, not in a partial)."""
    check_worker(identity)
    try:
        outcomes = list(func(files, group, **kwargs) if files is not None else func(group, **kwargs))
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
    no_worker_timeout: float = 300.0,
    shipment: Shipment | None = None,
) -> StageSummary:
    """Run `func(group, **kwargs)` on consecutive groups of up to `videos_per_task` tasks; it returns one
    Outcome per video of the group. `on_result` stores each video's value in the driver and returns a
    failure reason or None. At most `max_in_flight` groups (default 2 x the cluster's threads) are
    submitted at a time, so the results waiting in memory are bounded whatever the number of videos.
    Failures are recorded in `summary`, never raised; the bar and the summary count videos. Workers that
    leave are counted in `summary.lost_workers`; after `no_worker_timeout` seconds without any worker the
    videos not yet stored are failed with the reason and the function returns (`engine.watch`). With a
    `shipment` (workers without the driver's file system) each task carries its inputs (`engine.shipping`)."""
    start = time.perf_counter()
    identity = code_identity()
    window = max_in_flight or 2 * max(1, sum(client.nthreads().values()))
    pending = chunk(tasks, videos_per_task)[::-1]
    owner: dict[str, list[VideoTask]] = {}
    in_flight: dict[str, Future] = {}

    def submit() -> Future:
        group = pending.pop()
        key = f"{summary.stage}-{group[0].video_id}-{time.monotonic_ns()}"
        if shipment is None:
            future = client.submit(_run_group, identity, func, group, kwargs or {}, pure=False,
                                   retries=retries, key=key)
        else:
            parcel = pack(group, shipment)
            summary.shipped_bytes += parcel.size
            future = client.submit(_run_group, identity, partial(run_unpacked, func, parcel), group,
                                   kwargs or {}, shipment.files, pure=False, retries=retries, key=key)
        owner[future.key] = group
        in_flight[future.key] = future
        return future

    def give_up() -> None:
        client.cancel(list(in_flight.values()))

    running = as_completed([submit() for _ in range(min(window, len(pending)))])
    with tqdm(total=len(tasks), desc=summary.stage, unit="video", mininterval=1.0) as bar, \
            WorkerWatch(client, no_worker_timeout, on_stop=give_up) as watch:
        for future in running:
            group = owner.pop(future.key)
            in_flight.pop(future.key, None)
            if watch.stopped.is_set() and future.status != "finished":
                rerun = []
                for task in group:
                    summary.fail(task.video_id, task.path, watch.reason)
            else:
                rerun = _settle(future, group, on_result, summary)
            future.release()
            pending.extend([task] for task in reversed(rerun))
            bar.update(len(group) - len(rerun))
            if pending and not watch.stopped.is_set():
                running.add(submit())
        for group in pending if watch.stopped.is_set() else []:
            for task in group:
                summary.fail(task.video_id, task.path, watch.reason)
    summary.lost_workers += watch.lost
    summary.seconds += time.perf_counter() - start
    return summary


def _settle(future: Future, group: list[VideoTask], on_result: Callable[[VideoTask, Any], str | None],
            summary: StageSummary) -> list[VideoTask]:
    """Record the outcome of every video of a finished group; returns the videos to rerun one by one
    (all of a group of several that failed unexpectedly), else []."""
    try:
        outcomes = future.result()
    except WorkerMismatch:
        raise                   # no video's fault: the stage stops, with the one line
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
    except CacheUnavailable:
        raise                   # the disk, not the video: the stage stops, with the one line
    except BadEntry as exc:     # the writer refused the entry (NaN or inf): a reason, not a crash
        reason = exc.reason
    except Exception as exc:  # noqa: BLE001 - any failure of one video is recorded, the stage goes on
        reason = f"unexpected {type(exc).__name__}: {exc}"
        traceback.print_exception(exc)
    if reason is None:
        summary.done += 1
    else:
        summary.fail(task.video_id, task.path, reason)
