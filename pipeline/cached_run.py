"""Run a per-video stage over a manifest into a cache file, skipping what is already cached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipeline.cache import CacheWriter
from pipeline.manifests.format import Manifest
from pipeline.runner import ClusterConfig, StageSummary, VideoTask, dask_client, map_videos


def pending_tasks(manifest: Manifest, root: str | Path, writer: CacheWriter) -> list[VideoTask]:
    """Videos of the manifest without a complete entry of the current configuration."""
    done = writer.complete_ids()
    return [VideoTask(r.video_id, str(r.resolve(root))) for r in manifest.records if r.video_id not in done]


def run_into_cache(
    *,
    stage: str,
    manifest: Manifest,
    root: str | Path,
    writer: CacheWriter,
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    cluster: ClusterConfig,
    store: Callable[[VideoTask, Any], str | None] | None = None,
) -> StageSummary:
    """Map `func` over the videos still missing from `writer`'s cache. By default each result is an
    (arrays, attrs) pair written as the video's entry; `store` replaces that (and may return a failure)."""

    def write_entry(task: VideoTask, result: tuple[dict[str, Any], dict[str, Any]]) -> None:
        writer.write(task.video_id, *result)

    tasks = pending_tasks(manifest, root, writer)
    summary = StageSummary(stage, total=len(manifest), skipped=len(manifest) - len(tasks))
    if tasks:
        with dask_client(cluster) as client:
            map_videos(client, func, tasks, store or write_entry, summary, kwargs=kwargs,
                       retries=cluster.retries)
    print(summary.line(), flush=True)
    return summary
