"""DVC stage `faces`: MTCNN face detection on the decoded frames, crops for VGG-Face."""

from __future__ import annotations

import sys

from pipeline.cache import CacheReader
from pipeline.engine.cluster import cluster_config
from pipeline.errors import ConfigError
from pipeline.faces.config import face_config
from pipeline.faces.stage import run_faces
from pipeline.paths import dataset_paths
from stages.common import config_error, stage_params


def main(argv: list[str] | None = None) -> int:
    _, params = stage_params(__doc__, argv)
    paths = dataset_paths(params)
    decode_path = paths.cache_file("decode")
    with CacheReader(decode_path) as decode:
        decode_hash = decode.metadata["config_hash"]
    try:
        summary = run_faces(manifest=paths.read_manifest(), root=paths.root, decode_path=decode_path,
                            decode_hash=decode_hash, cache_path=paths.cache_file("faces"),
                            reports_dir=paths.reports, cfg=face_config(params),
                            cluster=cluster_config(params))
    except ConfigError as exc:
        return config_error("faces", exc)
    return summary.exit_code()


if __name__ == "__main__":
    sys.exit(main())
