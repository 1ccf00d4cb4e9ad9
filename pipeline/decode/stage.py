"""Driver side of the decode stage: probe and validate every video, decode what the extractors need.

Outputs: the decode cache (see `decode.video` for the entry layout), a probe table with one row per
video of the manifest (good or bad), and the stage summary with the failure list.
"""

from __future__ import annotations

import csv
import json
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from pipeline.cache import CacheReader, CacheWriter
from pipeline.config import config_hash
from pipeline.decode.config import DecodeConfig, decode_cache_config
from pipeline.decode.worker import DecodeOutcome, decode_group
from pipeline.engine.cached import VideoJob, run_into_cache
from pipeline.engine.cluster import ClusterConfig
from pipeline.engine.dask_map import VideoTask
from pipeline.engine.summary import StageSummary
from pipeline.manifests.format import Manifest
from pipeline.media.probe import VideoInfo


def run_decode(*, manifest: Manifest, root: str | Path, cache_path: Path, reports_dir: Path,
               cfg: DecodeConfig, cluster: ClusterConfig, compression: str | None = "gzip",
               compression_level: int = 1) -> StageSummary:
    config = decode_cache_config(cfg)
    probes: dict[str, dict[str, Any]] = {}

    def store(task: VideoTask, outcome: DecodeOutcome) -> str | None:
        info = replace(outcome.info, path=task.path)     # a shipped video was probed under a worker's path
        probes[task.video_id] = {**info.as_row(), "status": "failed" if outcome.error else "ok"}
        if outcome.decoded is None:
            return outcome.error
        attrs = {**outcome.decoded.attrs, "probe": json.dumps(info.as_row()), "source": outcome.source}
        writer.write(task.video_id, outcome.decoded.arrays, attrs)
        return None

    with CacheWriter(cache_path, stage="decode", config=config, config_hash=config_hash(config),
                     weights="none", compression=compression, level=compression_level) as writer:
        job = VideoJob("decode", decode_group,
                       {"cfg": cfg, "threads": cluster.threads_per_worker,
                        "gzip_level": compression_level if compression == "gzip" else None},
                       reads_videos=True)
        summary = run_into_cache(job, manifest=manifest, root=root, writer=writer, cluster=cluster,
                                 store=store)
    _write_probe_table(reports_dir / "probe.csv", manifest, probes, cache_path)
    summary.write(reports_dir / "decode_summary.json", reports_dir / "decode_failures.csv")
    return summary


def _write_probe_table(path: Path, manifest: Manifest, probes: dict[str, dict[str, Any]],
                       cache_path: Path) -> None:
    """One row per manifest video: probed in this run, or read back from its cache entry."""
    with CacheReader(cache_path) as cache:
        for record in manifest.records:
            if record.video_id not in probes and record.video_id in cache:
                row = json.loads(cache.attrs(record.video_id)["probe"])
                probes[record.video_id] = {**row, "status": "ok"}
    columns = ["video_id", *(f.name for f in fields(VideoInfo)), "status"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for record in manifest.records:
            writer.writerow({"video_id": record.video_id, **probes.get(record.video_id, {})})
