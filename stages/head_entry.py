"""What `train@<key>` and `evaluate@<key>` share: the head entry `heads.<key>` of params.yaml, resolved."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import load_params
from pipeline.graph import STAGE_GRAPH_FILE, unlisted
from pipeline.paths import DatasetPaths, dataset_paths
from pipeline.training.config import HeadSetup, head_setup


@dataclass(frozen=True)
class HeadStage:
    """What `train@<key>` and `evaluate@<key>` share: the entry, its folders and the manifest."""

    setup: HeadSetup
    paths: DatasetPaths

    @property
    def model_dir(self) -> Path:
        return Path("models") / self.paths.name / self.setup.key

    @property
    def report_dir(self) -> Path:
        return self.paths.reports / self.setup.key


def head_stage(description: str, argv: list[str] | None = None) -> HeadStage:
    """Parse `<key> [--params params.yaml]` and resolve the head entry `heads.<key>`."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("key", help="an entry of `heads:` in params.yaml")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    setup = head_setup(params, args.key)
    problem = unlisted(Path(args.params).parent / STAGE_GRAPH_FILE, "head_stages", setup.key, setup.caches)
    if problem:
        raise SystemExit(f"heads.{problem}")
    return HeadStage(setup, dataset_paths(params))
