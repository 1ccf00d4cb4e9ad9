"""DVC stage `feat@<extractor>`: one frozen backbone over every video's cached inputs.

    python -m stages.features r3d101_conv5 [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys

from pipeline.cache import CacheReader
from pipeline.config import load_params
from pipeline.extractors import get_extractor
from pipeline.features.compute import ExtractorSpec
from pipeline.features.inputs import SOURCES
from pipeline.features.run import run_features
from stages.common import cluster_config, dataset_paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extractor")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    paths = dataset_paths(params)
    section = params["features"][args.extractor]
    spec = ExtractorSpec(name=args.extractor, weights=str(section["weights"]),
                         options=dict(section.get("options") or {}), batch_size=int(section["batch_size"]),
                         seed=int(params["seed"]), videos_per_task=int(section.get("videos_per_task", 8)),
                         device=str(section.get("device", "auto")))
    needed = SOURCES[get_extractor(args.extractor).input_kind]
    sources = {name: str(paths.cache / f"{name}.h5") for name in needed}
    upstream = {}
    for name, path in sources.items():
        with CacheReader(path) as reader:
            upstream[name] = reader.metadata["config_hash"]
    summary = run_features(spec=spec, manifest=paths.read_manifest(), root=paths.root, sources=sources,
                           upstream=upstream, cache_path=paths.cache / f"{args.extractor}.h5",
                           reports_dir=paths.reports, cluster=cluster_config(params))
    return summary.exit_code()


if __name__ == "__main__":
    sys.exit(main())
