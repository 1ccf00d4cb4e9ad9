"""DVC stage `decode`: probe every video of the manifest and decode what the extractors need."""

from __future__ import annotations

import sys

from pipeline.decode import DecodeConfig
from pipeline.decode_run import run_decode
from stages.common import cluster_config, dataset_paths, load_params, parse_args


def main() -> int:
    args = parse_args(__doc__)
    params = load_params(args.params)
    paths = dataset_paths(params)
    section = dict(params["decode"])
    compression, level = section.pop("compression"), section.pop("compression_level")
    cfg = DecodeConfig(**{**section, "audio_rates": tuple(section["audio_rates"]),
                          "outputs": tuple(section["outputs"]), "seed": params["seed"]})
    summary = run_decode(manifest=paths.read_manifest(), root=paths.root,
                         cache_path=paths.cache / "decode.h5", reports_dir=paths.reports,
                         cfg=cfg, cluster=cluster_config(params),
                         compression=compression, compression_level=level)
    return summary.exit_code()


if __name__ == "__main__":
    sys.exit(main())
