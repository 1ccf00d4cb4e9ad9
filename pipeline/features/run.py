"""Driver side of a feature stage: the cache file of one (dataset, extractor), resumable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from pipeline.cache import CacheWriter
from pipeline.cached_run import run_into_cache
from pipeline.config import config_hash
from pipeline.extractors.base import check_precision
from pipeline.features.compute import ExtractorSpec, build_extractor, extract_group
from pipeline.features.device import check_device_name, device_for
from pipeline.manifests.format import Manifest
from pipeline.runner import ClusterConfig, StageSummary

GZIP_LEVEL = 4          # feature caches; the workers compress (pipeline/cache/packed.py)
SPEED_ONLY = ("batch_size", "videos_per_task", "device")
"""Recorded in the cache's configuration but not hashed: they change how fast, not which values (reduced
precision does change values, and is an extractor option, so it is hashed)."""


def feature_config(spec: ExtractorSpec, weights_id: str, upstream: dict[str, str]) -> dict[str, Any]:
    """Everything that changes the cached values: the extractor, its options and weights, the inputs."""
    return {"extractor": spec.name, "options": spec.options, "weights": weights_id, "seed": spec.seed,
            "upstream": upstream}


def weights_id(spec: ExtractorSpec) -> str:
    """What the cache records for `spec.weights` ("random", "none" or the checkpoint's sha256), from an
    extractor built here on the CPU and dropped: a wrong checkpoint fails now, before any worker starts.
    Precision does not touch the weights, so a (CUDA-only) fp16 spec is built in fp32 for this."""
    options = dict(spec.options)
    if options.get("precision") == "fp16":
        options["precision"] = "fp32"
    return build_extractor(replace(spec, options=options), torch.device("cpu")).weights


def check_runnable(spec: ExtractorSpec, cluster: ClusterConfig) -> None:
    """Fail before starting workers on what can be known here: the device's spelling and, for a
    LocalCluster (this machine), that the device exists and runs the precision."""
    check_device_name(spec.device)
    if cluster.scheduler is None:
        check_precision(spec.name, str(spec.options.get("precision", "fp32")), device_for(spec.device))


def run_features(*, spec: ExtractorSpec, manifest: Manifest, root: str | Path, sources: dict[str, str],
                 upstream: dict[str, str], cache_path: Path, reports_dir: Path,
                 cluster: ClusterConfig) -> StageSummary:
    """`upstream` maps each source cache to its configuration hash, so new inputs mean new features.
    Workers take `spec.videos_per_task` videos per task and batch across them (`compute.extract_group`)."""
    check_runnable(spec, cluster)
    weights = weights_id(spec)
    values = feature_config(spec, weights, upstream)
    config = {**values, **{k: getattr(spec, k) for k in SPEED_ONLY}}

    with CacheWriter(cache_path, stage=f"feat@{spec.name}", config=config, config_hash=config_hash(values),
                     weights=weights, compression="gzip", level=GZIP_LEVEL) as writer:
        summary = run_into_cache(stage=f"feat@{spec.name}", manifest=manifest, root=root, writer=writer,
                                 group_func=extract_group, videos_per_task=spec.videos_per_task,
                                 kwargs={"spec": spec, "sources": sources, "gzip_level": GZIP_LEVEL},
                                 cluster=cluster, release=list(sources.values()))
    if weights == "random":
        print(f"[feat@{spec.name}] NOTE: features computed from RANDOM weights (no checkpoint given); "
              "they are marked as such in the cache and in every report", flush=True)
    stem = reports_dir / f"feat_{spec.name}"
    summary.write(stem.with_name(stem.name + "_summary.json"), stem.with_name(stem.name + "_failures.csv"))
    return summary
