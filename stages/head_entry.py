"""What `train@<key>` and `evaluate@<key>` share: the head entry `heads.<key>` of params.yaml, resolved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import ConfigError
from pipeline.graph import STAGE_GRAPH_FILE, unlisted
from pipeline.paths import DatasetPaths, dataset_paths
from pipeline.training.config import HeadSetup, head_setup
from stages.common import config_error, stage_params


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


def head_stage(stage: str, description: str, argv: list[str] | None = None) -> HeadStage:
    """Parse `<key> [--params params.yaml]`, check params.yaml and resolve the head entry `heads.<key>`;
    a setting that cannot work exits 2 with one line."""
    args, params = stage_params(description, argv,
                                positional=("key", "an entry of `heads:` in params.yaml", "heads"))
    try:
        setup = head_setup(params, args.key)
        graph_file = Path(args.params).parent / STAGE_GRAPH_FILE
        problem = unlisted(graph_file, "head_stages", setup.key, setup.caches)
        if problem:
            raise ConfigError(f"heads.{problem}")
    except ConfigError as exc:
        raise SystemExit(config_error(f"{stage}@{args.key}", exc)) from None
    return HeadStage(setup, dataset_paths(params))
