"""DVC stage ``manifest``: build the dataset's manifest with the builder that params.yaml names.

    python -m stages.manifest [--params params.yaml] [--out reports/<dataset.name>]

Reads ``dataset`` (name, builder, root, lists, optional options) and ``seed``; writes
``<out>/manifest.csv`` (+ ``manifest.classes.txt``) and ``<out>/manifest_report.json``. Missing and
unlisted videos are reported, not fatal; the stage fails when the manifest would be empty, or when a
list is malformed (a label outside the class list, two videos with one id), naming the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipeline.manifests.protocols import ensure_split
from pipeline.manifests.registry import run_builder
from pipeline.manifests.report import format_summary, write_outputs
from pipeline.manifests.result import BuildResult, ManifestError
from pipeline.params_check import load_valid_params


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Build the dataset manifest.")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, default=None, help="default: reports/<dataset.name>")
    return parser.parse_args(argv)


def build(params: dict[str, Any], source: Path) -> BuildResult:
    ds = params.get("dataset") or {}
    absent = [k for k in ("name", "builder", "root") if not ds.get(k)]
    if absent:
        raise ManifestError(f"{source}: the dataset section lacks {absent}")
    result = run_builder(ds["builder"], ds["root"], ds.get("lists"), ds.get("options") or {})
    return ensure_split(result, seed=int(params.get("seed", 0)))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # the first stage of a run checks everything, the names and options of every extractor and head too
    params = load_valid_params(args.params, deep=True)
    try:
        result = build(params, args.params)
    except (ManifestError, OSError) as e:
        print(f"manifest: {e}", file=sys.stderr)
        return 2
    ds = params["dataset"]
    print(format_summary(result))
    if not len(result.manifest):
        print(f"manifest: no video of {ds['root']} made it into the manifest", file=sys.stderr)
        return 1
    print(f"wrote {write_outputs(result, args.out or Path('reports') / ds['name'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
