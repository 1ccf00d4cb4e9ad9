"""What every stage entry point shares: params, dataset paths, the Dask configuration.

It imports nothing heavy (no torch, no heads): each stage is a process of its own, and the decode, faces and
feature drivers started 5-6 s slower when this module pulled in the heads and the training loop
(torchvision, sklearn, librosa, dvclive). What the head stages share is in `stages.head_entry`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import load_params
from pipeline.manifests.format import Manifest, read_manifest
from pipeline.runner import ClusterConfig


@dataclass(frozen=True)
class DatasetPaths:
    name: str
    root: Path
    reports: Path  # reports/<name>/: manifest, probe table, summaries, failure lists
    cache: Path  # cache/<name>/: one HDF5 file per extractor

    @property
    def manifest(self) -> Path:
        return self.reports / "manifest.csv"

    def read_manifest(self) -> Manifest:
        return read_manifest(self.manifest)


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="parameters file (default: params.yaml)")
    return parser.parse_args()


def dataset_paths(params: dict[str, Any]) -> DatasetPaths:
    ds = params["dataset"]
    name = ds["name"]
    return DatasetPaths(
        name=name, root=Path(ds["root"]), reports=Path("reports") / name, cache=Path("cache") / name
    )


def cluster_config(params: dict[str, Any]) -> ClusterConfig:
    return ClusterConfig(**params.get("dask", {}))


__all__ = [
    "DatasetPaths",
    "cluster_config",
    "dataset_paths",
    "load_params",
    "parse_args",
]
