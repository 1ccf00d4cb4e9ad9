"""DVC stage `train@<key>`: train the head entry `heads.<key>` of params.yaml on the cached features.

python -m stages.train vaanet [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.config import load_params
from pipeline.training.run import train_head
from stages.common import dataset_paths, head_setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("key", help="an entry of `heads:` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    paths = dataset_paths(params)
    setup = head_setup(params, args.key)
    train_head(
        setup,
        paths.read_manifest(),
        cache_dir=paths.cache,
        model_dir=Path("models") / paths.name / args.key,
        live_dir=paths.reports / args.key / "live",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
