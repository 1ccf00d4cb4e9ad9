"""Driver side of a feature stage: the cache file of one (dataset, extractor), resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.cache import CacheWriter
from pipeline.cached_run import run_into_cache
from pipeline.config import config_hash
from pipeline.features.compute import ExtractorSpec, extract_video, extractor_for
from pipeline.manifests.format import Manifest
from pipeline.runner import ClusterConfig, StageSummary


def feature_config(spec: ExtractorSpec, weights_id: str, upstream: dict[str, str]) -> dict[str, Any]:
    """Everything that changes the cached values: the extractor, its options and weights, the inputs."""
    return {"extractor": spec.name, "options": spec.options, "weights": weights_id, "seed": spec.seed,
            "upstream": upstream}


def run_features(*, spec: ExtractorSpec, manifest: Manifest, root: str | Path, sources: dict[str, str],
                 upstream: dict[str, str], cache_path: Path, reports_dir: Path,
                 cluster: ClusterConfig) -> StageSummary:
    """`upstream` maps each source cache to its configuration hash, so new inputs mean new features."""
    weights_id = extractor_for(spec).weights
    config = {**feature_config(spec, weights_id, upstream), "batch_size": spec.batch_size}
    config_id = config_hash({k: v for k, v in config.items() if k != "batch_size"})

    with CacheWriter(cache_path, stage=f"feat@{spec.name}", config=config, config_hash=config_id,
                     weights=weights_id, compression="gzip", level=4) as writer:
        summary = run_into_cache(stage=f"feat@{spec.name}", manifest=manifest, root=root, writer=writer,
                                 func=extract_video,
                                 kwargs={"spec": spec, "sources": sources}, cluster=cluster)
    if weights_id == "random":
        print(f"[feat@{spec.name}] NOTE: features computed from RANDOM weights (no checkpoint given); "
              "they are marked as such in the cache and in every report", flush=True)
    stem = reports_dir / f"feat_{spec.name}"
    summary.write(stem.with_name(stem.name + "_summary.json"), stem.with_name(stem.name + "_failures.csv"))
    return summary

