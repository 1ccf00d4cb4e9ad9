"""params.yaml sections -> the configurations the library takes, built in one place.

The DVC stages and `vemo predict` both use these, so a cache that predict recomputes for new videos is
configured (and hashed) exactly as the stage would configure it. Nothing here reads a file: the caller
passes the parsed params (`config.load_params`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.decode.config import DecodeConfig
from pipeline.engine.cluster import ClusterConfig
from pipeline.faces.config import FaceConfig
from pipeline.features.config import ExtractorSpec
from pipeline.manifests.format import Manifest, read_manifest

DECODE_STORAGE = ("compression", "compression_level")   # how the decode cache is stored, not what it holds


@dataclass(frozen=True)
class DatasetPaths:
    name: str
    root: Path      # the videos
    reports: Path   # reports/<name>/: manifest, probe table, summaries, failure lists
    cache: Path     # cache/<name>/: one HDF5 file per stage or extractor

    @property
    def manifest(self) -> Path:
        return self.reports / "manifest.csv"

    def cache_file(self, name: str) -> Path:
        """The cache of stage or extractor `name` ("decode", "faces", "r3d101_conv5", ...)."""
        return self.cache / f"{name}.h5"

    def read_manifest(self) -> Manifest:
        return read_manifest(self.manifest)


def dataset_paths(params: dict[str, Any]) -> DatasetPaths:
    ds = params["dataset"]
    name = ds["name"]
    return DatasetPaths(name=name, root=Path(ds["root"]), reports=Path("reports") / name,
                        cache=Path("cache") / name)


def cluster_config(params: dict[str, Any]) -> ClusterConfig:
    return ClusterConfig(**params.get("dask", {}))


def decode_config(params: dict[str, Any]) -> DecodeConfig:
    section = {k: v for k, v in params["decode"].items() if k not in DECODE_STORAGE}
    return DecodeConfig(**{**section, "audio_rates": tuple(section["audio_rates"]),
                           "outputs": tuple(section["outputs"]), "seed": params["seed"]})


def decode_storage(params: dict[str, Any]) -> dict[str, Any]:
    """`compression` and `compression_level` of the decode cache."""
    return {k: params["decode"][k] for k in DECODE_STORAGE}


def face_config(params: dict[str, Any]) -> FaceConfig:
    return FaceConfig(**params["faces"])


def extractor_spec(params: dict[str, Any], name: str) -> ExtractorSpec:
    section = params["features"][name]
    return ExtractorSpec(name=name, weights=str(section["weights"]),
                         options=dict(section.get("options") or {}), batch_size=int(section["batch_size"]),
                         seed=int(params["seed"]), videos_per_task=int(section.get("videos_per_task", 8)),
                         device=str(section.get("device", "auto")))


def extractor_specs(params: dict[str, Any]) -> dict[str, ExtractorSpec]:
    return {name: extractor_spec(params, name) for name in params.get("features", {})}
