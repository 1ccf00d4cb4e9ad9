"""DVC stage `faces`: MTCNN face detection on the decoded frames, crops for VGG-Face."""

from __future__ import annotations

import sys

from pipeline.cache import CacheReader
from pipeline.faces.detect import FaceConfig
from pipeline.faces.run import run_faces
from stages.common import cluster_config, dataset_paths, load_params, parse_args


def main() -> int:
    params = load_params(parse_args(__doc__).params)
    paths = dataset_paths(params)
    decode_path = paths.cache / "decode.h5"
    with CacheReader(decode_path) as decode:
        decode_hash = decode.metadata["config_hash"]
    summary = run_faces(manifest=paths.read_manifest(), root=paths.root, decode_path=decode_path,
                        decode_hash=decode_hash, cache_path=paths.cache / "faces.h5",
                        reports_dir=paths.reports, cfg=FaceConfig(**params["faces"]),
                        cluster=cluster_config(params))
    return summary.exit_code()


if __name__ == "__main__":
    sys.exit(main())
