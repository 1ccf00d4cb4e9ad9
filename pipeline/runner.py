"""Map a per-video function over videos on a Dask cluster; the calling process writes the results.

    driver (this process)                        workers (LocalCluster, or an existing scheduler)
    ──────────────────────                       ────────────────────────────────────────────────
    submit a bounded window of tasks  ───────>   func(video_id, path, **kwargs)
    as each finishes: on_result(...)  <───────   result, or VideoError (recorded, never retried)
    (the single cache writer), progress bar,     an unexpected exception is retried `retries` times;
    summary and failure list                     a dead worker's tasks are rerun elsewhere by Dask

Only the driver touches output files, so no two processes ever write one HDF5 file.
"""

from __future__ import annotations

import csv
import json
import logging
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dask.distributed import Client, Future, LocalCluster, as_completed
from tqdm import tqdm

from pipeline.errors import VideoError


@dataclass(frozen=True)
class ClusterConfig:
    scheduler: str | None = None      # address of a running scheduler; None starts a LocalCluster
    workers: int = 2
    threads_per_worker: int = 1
    memory_limit: str = "auto"
    retries: int = 1                  # reruns of a task that failed unexpectedly (not a VideoError)


@dataclass(frozen=True)
class VideoTask:
    video_id: str
    path: str


@dataclass(frozen=True)
class Failure:
    video_id: str
    path: str
    reason: str


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
def dask_client(cfg: ClusterConfig) -> Iterator[Client]:
    """A client on the given scheduler, or on a LocalCluster of worker processes that ends with it."""
    if cfg.scheduler:
        with Client(cfg.scheduler) as client:
            yield client
        return
    threads = str(cfg.threads_per_worker)
    with LocalCluster(
        n_workers=cfg.workers, threads_per_worker=cfg.threads_per_worker, processes=True,
        memory_limit=cfg.memory_limit, dashboard_address=None, silence_logs=logging.ERROR,
        env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads},
    ) as cluster, Client(cluster) as client:
        yield client


def _call(func: Callable[..., Any], task: VideoTask, kwargs: dict[str, Any]) -> tuple[str, Any]:
    """Worker side: a VideoError is returned as data so Dask does not retry a deterministic failure."""
    try:
        return "ok", func(task.video_id, task.path, **kwargs)
    except VideoError as exc:
        return "error", exc.reason


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
    """Run `func(video_id, path, **kwargs)` for every task; `on_result` stores each result in the driver
    and returns a failure reason or None. Failures are recorded in `summary`, never raised."""
    start = time.perf_counter()
    window = max_in_flight or 2 * max(1, sum(client.nthreads().values()))
    pending = list(reversed(tasks))
    owner: dict[str, VideoTask] = {}

    def submit() -> Future:
        task = pending.pop()
        future = client.submit(_call, func, task, kwargs or {}, pure=False, retries=retries,
                               key=f"{summary.stage}-{task.video_id}-{time.monotonic_ns()}")
        owner[future.key] = task
        return future

    running = as_completed([submit() for _ in range(min(window, len(pending)))])
    with tqdm(total=len(tasks), desc=summary.stage, unit="video", mininterval=1.0) as bar:
        for future in running:
            task = owner.pop(future.key)
            _settle(future, task, on_result, summary)
            future.release()
            bar.update(1)
            if pending:
                running.add(submit())
    summary.seconds += time.perf_counter() - start
    return summary


def _settle(future: Future, task: VideoTask, on_result: Callable[[VideoTask, Any], str | None],
            summary: StageSummary) -> None:
    try:
        status, value = future.result()
        reason = on_result(task, value) if status == "ok" else value
    except Exception as exc:  # noqa: BLE001 - any failure of one video is recorded, the stage goes on
        reason = f"unexpected {type(exc).__name__}: {exc}"
        traceback.print_exception(exc)
    if reason is None:
        summary.done += 1
    else:
        summary.fail(task.video_id, task.path, reason)
