"""Run a per-video stage over a manifest into its cache file, skipping the videos already cached.

A video is skipped when its cache holds a complete entry of the stage's current configuration, made from
the file as it is now (`source_fingerprint`); everything else is mapped over the cluster (`dask_map`), and
the driver, the cache's only writer, stores each result as it arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dask.distributed import Client

from pipeline.cache import CacheWriter
from pipeline.cache.space import forecast
from pipeline.engine.cluster import ClusterConfig, dask_client
from pipeline.engine.dask_map import Outcome, VideoTask, map_groups
from pipeline.engine.shipping import Shipment, scatter_files
from pipeline.engine.summary import StageSummary
from pipeline.engine.worker_state import release_readers
from pipeline.manifests.fingerprint import source_fingerprint
from pipeline.manifests.format import Manifest

Store = Callable[[VideoTask, Any], str | None]
"""Driver side: store one video's result; returns a failure reason, or None when stored."""


def pending_tasks(manifest: Manifest, root: str | Path,
                  writer: CacheWriter | dict[str, str]) -> list[VideoTask]:
    """Videos of the manifest without a complete entry of the current configuration made from the file
    as it is now, each with the file's fingerprint. `writer`: the open cache, or its entries' sources
    (`cache.writer.cached_sources`, read before the cache is opened for writing)."""
    done = writer.complete_sources() if isinstance(writer, CacheWriter) else writer
    tasks = [VideoTask(r.video_id, path, source_fingerprint(path))
             for r in manifest.records for path in [str(r.resolve(root))]]
    return [t for t in tasks if done.get(t.video_id) != t.source or not t.source]


def task_groups(videos: int, videos_per_task: int) -> int:
    """How many tasks `videos` pending videos make, `videos_per_task` each (`dask_map.chunk`)."""
    return -(-videos // max(1, videos_per_task))


@dataclass(frozen=True)
class VideoJob:
    """What a stage maps over its videos: `func(group, **kwargs)` returns one Outcome per video of a group
    of up to `videos_per_task` (`dask_map.per_video` turns a per-video function into one). The workers'
    readers of the cache files `release` are closed when the stage ends. Without a shared file system
    the videos (`reads_videos`), the entries of the `release` caches and the `files` are shipped."""

    stage: str
    func: Callable[..., list[Outcome]]
    kwargs: dict[str, Any] = field(default_factory=dict)
    videos_per_task: int = 1
    release: Sequence[str] = ()     # the upstream cache files its workers read
    reads_videos: bool = False      # whether its workers open the video files (decode)
    files: Sequence[str] = ()       # files every worker reads whole (weights)
    arrays: dict[str, Sequence[str]] = field(default_factory=dict)   # a `release` cache -> the prefixes
                                                                     # of the arrays read (absent: all)


def run_into_cache(job: VideoJob, *, manifest: Manifest, root: str | Path, writer: CacheWriter,
                   cluster: ClusterConfig, client: Client | None = None,
                   store: Store | None = None, tasks: Sequence[VideoTask] | None = None) -> StageSummary:
    """Run `job` over the videos still missing from `writer`'s cache. By default each result is an
    (arrays, attrs) pair written as the video's entry, recorded as made from the file as listed; a stage
    computed from an upstream cache returns the upstream entry's `source` in its attrs instead, so that
    its entry is recomputed with the upstream one when the file changes. `store` replaces that (and may
    return a failure).
    With an open `client` the job runs on it (the caller has used its workers already); else on a client
    of `cluster`, started only when something is missing, with no more workers than there are tasks.
    `tasks`: the pending videos, when the caller listed them already (`pending_tasks`; the cache has not
    changed since)."""

    def write_entry(task: VideoTask, result: tuple[dict[str, Any], dict[str, Any]]) -> None:
        arrays, attrs = result
        writer.write(task.video_id, arrays, {"source": task.source, **attrs})

    tasks = pending_tasks(manifest, root, writer) if tasks is None else tasks
    summary = StageSummary(job.stage, total=len(manifest), skipped=len(manifest) - len(tasks))
    if short := forecast(writer.path, writer.entries(), len(tasks)):
        print(f"[{job.stage}] WARNING: {short}", flush=True)
    if tasks:
        groups = task_groups(len(tasks), job.videos_per_task)
        with nullcontext(client) if client is not None else dask_client(cluster, tasks=groups) as running:
            shipment = None if cluster.shared_filesystem else Shipment(
                videos=job.reads_videos, caches={path: job.arrays.get(path) for path in job.release},
                files=scatter_files(running, job.files))
            map_groups(running, job.func, tasks, store or write_entry, summary,
                       videos_per_task=job.videos_per_task, kwargs=job.kwargs, retries=cluster.retries,
                       no_worker_timeout=cluster.no_worker_timeout, shipment=shipment)
            if job.release:
                running.run(release_readers, list(job.release))
    print(summary.line(), flush=True)
    return summary
