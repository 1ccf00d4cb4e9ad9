"""What `train@<key>` and `evaluate@<key>` share: the head entry `heads.<key>` of params.yaml, resolved."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from pipeline.config import load_params
from pipeline.heads import head_accepts
from pipeline.training.loop import TrainConfig
from pipeline.training.run import HeadSetup
from stages.common import DatasetPaths, dataset_paths

_LOOP_KEYS = {f.name for f in fields(TrainConfig)}
_SETUP_KEYS = {
    "protocol",
    "runs",
    "selection",
    "val_fraction",
    "preload",
    "target",
    "polarity",
    "feature_scale",
    "detection_ground_truth",
}


def head_setup(params: dict[str, Any], key: str) -> HeadSetup:
    """`heads.<key>` of params.yaml, its `train:` overrides merged over the shared `train:` section."""
    if key not in params.get("heads", {}):
        raise KeyError(f"no entry heads.{key} in params.yaml; entries: {sorted(params.get('heads', {}))}")
    entry = params["heads"][key]
    merged = {**params["train"], **(entry.get("train") or {})}
    unknown = sorted(set(merged) - _LOOP_KEYS - _SETUP_KEYS)
    if unknown:
        raise KeyError(f"heads.{key}: unknown train keys {unknown}")
    options = dict(entry.get("options") or {})
    if head_accepts(entry["head"], "segments"):
        # T of the cached snippets: the head's temporal layers are sized by it
        options.setdefault("segments", int(params["decode"]["segments"]))
    return HeadSetup(
        key=key,
        head=entry["head"],
        caches=tuple(entry["caches"]),
        options=options,
        train=TrainConfig(**{k: v for k, v in merged.items() if k in _LOOP_KEYS}),
        seed=int(params["seed"]),
        **{k: v for k, v in merged.items() if k in _SETUP_KEYS},
    )


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
    return HeadStage(head_setup(params, args.key), dataset_paths(params))
