"""The decode stage: probe and validate every video, decode what the extractors need into the cache.

Outputs: the decode cache (see `pipeline.decode` for the entry layout), a probe table with one row per
video of the manifest (good or bad), and the stage summary with the failure list.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.cache import CacheReader, CacheWriter
from pipeline.cache.packed import pack_entry
from pipeline.cached_run import run_into_cache, source_fingerprint
from pipeline.config import config_hash
from pipeline.decode import DecodeConfig, Decoded, decode_video
from pipeline.errors import VideoError
from pipeline.manifests.format import Manifest
from pipeline.media.probe import VideoInfo, probe_video
from pipeline.runner import ClusterConfig, StageSummary, VideoTask

SCALING = "ffmpeg-area"   # snippets and keyframes scaled by ffmpeg (area); before: torch antialiased bilinear


@dataclass(frozen=True)
class DecodeOutcome:
    info: VideoInfo
    decoded: Decoded | None
    error: str = ""


def probe_and_decode(video_id: str, path: str, cfg: DecodeConfig, threads: int = 0,
                     gzip_level: int | None = None) -> DecodeOutcome:
    """Worker side: never raises for a bad video, so its probe row is kept with the reason. With a
    `gzip_level` the arrays come back compressed (pipeline/cache/packed.py: the driver only copies)."""
    info = probe_video(path, packets=cfg.may_seek)
    try:
        decoded = decode_video(path, video_id, info, cfg, threads)
        if gzip_level is not None:
            decoded = Decoded(pack_entry(decoded.arrays, gzip_level, threads or len(os.sched_getaffinity(0))),
                              decoded.attrs)
        return DecodeOutcome(info, decoded)
    except VideoError as exc:
        return DecodeOutcome(info, None, exc.reason)


def decode_config_dict(cfg: DecodeConfig) -> dict[str, Any]:
    """The hashed configuration; `max_seconds` only when set, so caches made before it existed stay valid.

    `scaling` names how frames are scaled (SCALING): entries of an older method hold other pixel values,
    so they are recomputed, not mixed with new ones.
    """
    config = {**asdict(cfg), "audio_rates": list(cfg.audio_rates), "outputs": list(cfg.outputs),
              "scaling": SCALING}
    if config["max_seconds"] is None:
        del config["max_seconds"]
    return config


def run_decode(*, manifest: Manifest, root: str | Path, cache_path: Path, reports_dir: Path,
               cfg: DecodeConfig, cluster: ClusterConfig, compression: str | None = "gzip",
               compression_level: int = 1) -> StageSummary:
    config = decode_config_dict(cfg)
    probes: dict[str, dict[str, Any]] = {}

    def store(task: VideoTask, outcome: DecodeOutcome) -> str | None:
        probes[task.video_id] = {**outcome.info.as_row(), "status": "failed" if outcome.error else "ok"}
        if outcome.decoded is None:
            return outcome.error
        attrs = {**outcome.decoded.attrs, "probe": json.dumps(outcome.info.as_row()),
                 "source": source_fingerprint(task.path)}
        writer.write(task.video_id, outcome.decoded.arrays, attrs)
        return None

    with CacheWriter(cache_path, stage="decode", config=config, config_hash=config_hash(config),
                     weights="none", compression=compression, level=compression_level) as writer:
        summary = run_into_cache(stage="decode", manifest=manifest, root=root, writer=writer,
                                 func=probe_and_decode, store=store, cluster=cluster,
                                 kwargs={"cfg": cfg, "threads": cluster.threads_per_worker,
                                         "gzip_level": compression_level if compression == "gzip" else None})
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
