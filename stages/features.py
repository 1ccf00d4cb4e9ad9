"""DVC stage `feat@<extractor>`: one frozen backbone over every video's cached inputs.

    python -m stages.features r3d101_conv5 [--params params.yaml]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pipeline.cache import CacheReader
from pipeline.engine.cluster import cluster_config
from pipeline.errors import ConfigError
from pipeline.features.config import extractor_spec
from pipeline.features.stage import run_features
from pipeline.graph import STAGE_GRAPH_FILE, sources_of, unlisted
from pipeline.paths import dataset_paths
from stages.common import config_error, stage_params


def main(argv: list[str] | None = None) -> int:
    args, params = stage_params(__doc__.splitlines()[0], argv, positional=(
        "extractor", "an entry of `features:` in params.yaml", "features"))
    try:
        return run(args.extractor, params, Path(args.params).parent / STAGE_GRAPH_FILE)
    except ConfigError as exc:
        return config_error(f"feat@{args.extractor}", exc)


def run(extractor: str, params: dict[str, Any], graph_file: Path) -> int:
    paths = dataset_paths(params)
    problem = unlisted(graph_file, "feature_stages", extractor, sources_of(extractor))
    if problem:
        raise ConfigError(f"features.{problem}")
    sources = {name: str(paths.cache_file(name)) for name in sources_of(extractor)}
    upstream = {}
    for name, path in sources.items():
        with CacheReader(path) as reader:
            upstream[name] = reader.metadata["config_hash"]
    summary = run_features(spec=extractor_spec(params, extractor), manifest=paths.read_manifest(),
                           root=paths.root, sources=sources, upstream=upstream,
                           cache_path=paths.cache_file(extractor), reports_dir=paths.reports,
                           cluster=cluster_config(params))
    return summary.exit_code()


if __name__ == "__main__":
    sys.exit(main())
