"""DVC stage `decode`: probe every video of the manifest and decode what the extractors need."""

from __future__ import annotations

import sys

from pipeline.decode.config import decode_config, decode_storage
from pipeline.decode.stage import run_decode
from pipeline.engine.cluster import cluster_config
from pipeline.errors import ConfigError
from pipeline.paths import dataset_paths
from stages.common import config_error, stage_params


def main(argv: list[str] | None = None) -> int:
    _, params = stage_params(__doc__, argv)
    paths = dataset_paths(params)
    try:
        summary = run_decode(manifest=paths.read_manifest(), root=paths.root,
                             cache_path=paths.cache_file("decode"), reports_dir=paths.reports,
                             cfg=decode_config(params), cluster=cluster_config(params),
                             **decode_storage(params))
    except ConfigError as exc:
        return config_error("decode", exc)
    return summary.exit_code()


if __name__ == "__main__":
    sys.exit(main())
