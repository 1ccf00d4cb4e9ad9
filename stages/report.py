"""DVC stage `report@<key>`: the self-contained HTML run report of the head entry `heads.<key>`.

    python -m stages.report vaanet [--params params.yaml]     ->  reports/<dataset>/<key>/report.html
"""

from __future__ import annotations

import sys

from pipeline.paths import dataset_paths
from pipeline.report.build import build_report
from stages.common import stage_params


def main(argv: list[str] | None = None) -> int:
    args, params = stage_params(__doc__.splitlines()[0], argv,
                                positional=("key", "an entry of `heads:` in params.yaml", "heads"))
    paths = dataset_paths(params)
    report_dir = paths.reports / args.key
    examples = int(params.get("report", {}).get("examples", 10))
    out = build_report(dataset=paths.name, key=args.key, report_dir=report_dir, cache_dir=paths.cache,
                       out=report_dir / "report.html", n_examples=examples)
    print(f"[report@{args.key}] wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
