"""DVC stage `evaluate@<key>`: score the trained head `heads.<key>` once on its test videos.

    python -m stages.evaluate vaanet [--params params.yaml]
"""

from __future__ import annotations

import sys

from pipeline.training.stage import evaluate_head
from stages.head_entry import head_stage


def main(argv: list[str] | None = None) -> int:
    stage = head_stage("evaluate", __doc__.splitlines()[0], argv)
    summary = evaluate_head(stage.setup, stage.paths.read_manifest(), cache_dir=stage.paths.cache,
                            model_dir=stage.model_dir, out_dir=stage.report_dir)
    key = stage.setup.key
    std = f" ± {summary['accuracy_std']:.3f}" if summary["runs"] > 1 else ""
    print(f"[evaluate@{key}] accuracy {summary['accuracy']:.3f}{std} over {summary['runs']} run(s), "
          f"macro-F1 {summary['macro_f1']:.3f}; selection: {summary['selection']}", flush=True)
    randoms = [k for k, v in summary["features"].items() if v == "RANDOM WEIGHTS"]
    if randoms:
        print(f"[evaluate@{key}] NOTE: features from RANDOM weights ({', '.join(randoms)})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
