"""Driver side of the faces stage: the faces cache of a dataset, resumable (entry layout: `worker`)."""

from __future__ import annotations

from pathlib import Path

from pipeline.cache import CacheWriter
from pipeline.config import config_hash
from pipeline.engine.cached import VideoJob, run_into_cache
from pipeline.engine.cluster import ClusterConfig
from pipeline.engine.dask_map import per_video
from pipeline.engine.summary import StageSummary
from pipeline.faces.config import NAN_ROWS, FaceConfig, faces_cache_config
from pipeline.faces.worker import faces_of_video
from pipeline.manifests.format import Manifest

DETECTOR_WEIGHTS = "facenet-pytorch bundled MTCNN"


def run_faces(*, manifest: Manifest, root: str | Path, decode_path: Path, decode_hash: str,
              cache_path: Path, reports_dir: Path, cfg: FaceConfig, cluster: ClusterConfig) -> StageSummary:
    config = faces_cache_config(cfg, decode_hash)
    with CacheWriter(cache_path, stage="faces", config=config, config_hash=config_hash(config),
                     weights=DETECTOR_WEIGHTS, nan_rows=NAN_ROWS) as writer:
        job = VideoJob("faces", per_video(faces_of_video), {"cfg": cfg, "decode_path": str(decode_path)},
                       release=[str(decode_path)])
        summary = run_into_cache(job, manifest=manifest, root=root, writer=writer, cluster=cluster)
    summary.write(reports_dir / "faces_summary.json", reports_dir / "faces_failures.csv")
    return summary
