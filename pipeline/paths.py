"""Where a dataset's files live: its videos, its reports and its caches (outputs of the DVC stages)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError
from pipeline.manifests.format import Manifest, read_manifest


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
        """The manifest stage's output; ConfigError when it has not run (a stage started by hand before it,
        or reports/ deleted), which was a FileNotFoundError traceback."""
        if not self.manifest.is_file():
            raise ConfigError(f"{self.manifest} not found: run `dvc repro manifest` (or `python -m "
                              "stages.manifest`) first")
        return read_manifest(self.manifest)


def dataset_paths(params: dict[str, Any]) -> DatasetPaths:
    """The dataset's paths; the videos and caches absolute, since Dask workers open them and may run in
    another folder, or on another machine that mounts the same files (docs/cluster.md)."""
    ds = params["dataset"]
    name = ds["name"]
    return DatasetPaths(name=name, root=Path(ds["root"]).expanduser().absolute(),
                        reports=Path("reports") / name, cache=(Path("cache") / name).absolute())
