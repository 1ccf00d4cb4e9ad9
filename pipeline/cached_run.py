"""Run a per-video (or per-group) stage over a manifest into a cache file, skipping what is cached."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from dask.distributed import Client

from pipeline.cache import CacheWriter
from pipeline.cache.worker_readers import release_readers
from pipeline.manifests.format import Manifest
from pipeline.runner import ClusterConfig, StageSummary, VideoTask, dask_client, each_video, map_groups


def source_fingerprint(path: str | Path, block: int = 1 << 16) -> str:
    """Size and a hash of the first and last 64 KiB of a video file ("" when it cannot be read): an entry
    made from another version of the file is recomputed. Not the mtime, which `dvc checkout`, a copy or a
    regenerated demo change without changing the video; not a full hash, which would read the dataset."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            digest = hashlib.sha256(f.read(block))
            f.seek(max(0, size - block))
            digest.update(f.read(block))
    except OSError:
        return ""
    return f"{size}:{digest.hexdigest()[:16]}"


def pending_tasks(manifest: Manifest, root: str | Path, writer: CacheWriter) -> list[VideoTask]:
    """Videos of the manifest without a complete entry of the current configuration made from the file
    as it is now."""
    done = writer.complete_sources()
    tasks = [VideoTask(r.video_id, str(r.resolve(root))) for r in manifest.records]
    return [t for t in tasks if t.video_id not in done or done[t.video_id] != source_fingerprint(t.path)]


def run_into_cache(
    *,
    stage: str,
    manifest: Manifest,
    root: str | Path,
    writer: CacheWriter,
    kwargs: dict[str, Any],
    cluster: ClusterConfig,
    func: Callable[..., Any] | None = None,
    group_func: Callable[..., Any] | None = None,
    videos_per_task: int = 1,
    store: Callable[[VideoTask, Any], str | None] | None = None,
    release: Sequence[str] = (),
    client: Client | None = None,
) -> StageSummary:
    """Map over the videos still missing from `writer`'s cache either a per-video
    `func(video_id, path, **kwargs)` (one video per task) or a `group_func(group, **kwargs)` returning one
    `runner.Outcome` per video (groups of `videos_per_task`). By default each result is an (arrays, attrs)
    pair written as the video's entry; `store` replaces that (and may return a failure). The workers'
    readers of the cache files `release` are closed at the end, so that a long-lived external cluster does
    not keep an upstream cache open and block the stage that rewrites it. With an open `client` the stage
    runs on it (the caller has used its workers already); else on a client of `cluster`, started only when
    something is missing."""
    if (func is None) == (group_func is None):
        raise ValueError("run_into_cache takes exactly one of func (per video) and group_func")

    def write_entry(task: VideoTask, result: tuple[dict[str, Any], dict[str, Any]]) -> None:
        arrays, attrs = result
        writer.write(task.video_id, arrays, {**attrs, "source": source_fingerprint(task.path)})

    tasks = pending_tasks(manifest, root, writer)
    summary = StageSummary(stage, total=len(manifest), skipped=len(manifest) - len(tasks))
    if tasks:
        with nullcontext(client) if client is not None else dask_client(cluster) as running:
            map_groups(running, group_func or partial(each_video, func), tasks, store or write_entry, summary,
                       videos_per_task=videos_per_task if group_func else 1, kwargs=kwargs,
                       retries=cluster.retries)
            if release:
                running.run(release_readers, list(release))
    print(summary.line(), flush=True)
    return summary
