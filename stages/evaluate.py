"""DVC stage `evaluate@<key>`: score the trained head `heads.<key>` once on its test videos.

python -m stages.evaluate vaanet [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.config import load_params
from pipeline.training.run import evaluate_head
from stages.common import dataset_paths, head_setup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("key", help="an entry of `heads:` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    paths = dataset_paths(params)
    summary = evaluate_head(
        head_setup(params, args.key),
        paths.read_manifest(),
        cache_dir=paths.cache,
        model_dir=Path("models") / paths.name / args.key,
        out_dir=paths.reports / args.key,
    )
    std = f" ± {summary['accuracy_std']:.3f}" if summary["runs"] > 1 else ""
    print(
        f"[evaluate@{args.key}] accuracy {summary['accuracy']:.3f}{std} over {summary['runs']} run(s), "
        f"macro-F1 {summary['macro_f1']:.3f}; selection: {summary['selection']}",
        flush=True,
    )
    randoms = [k for k, v in summary["features"].items() if v == "RANDOM WEIGHTS"]
    if randoms:
        print(f"[evaluate@{args.key}] NOTE: features from RANDOM weights ({', '.join(randoms)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
