"""DVC stage `report@<key>`: the self-contained HTML run report of the head entry `heads.<key>`.

    python -m stages.report vaanet [--params params.yaml]     ->  reports/<dataset>/<key>/report.html

The folders are those of `stages.common.dataset_paths` (reports/<name>/, cache/<name>/), spelt out here so
this stage does not import torch through `stages.common`: it renders 13 pages in every `dvc repro`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.config import load_params
from pipeline.report.build import build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("key", help="an entry of `heads:` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    name = params["dataset"]["name"]
    report_dir = Path("reports") / name / args.key
    examples = int(params.get("report", {}).get("examples", 10))
    out = build_report(dataset=name, key=args.key, report_dir=report_dir, cache_dir=Path("cache") / name,
                       out=report_dir / "report.html", n_examples=examples)
    print(f"[report@{args.key}] wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
