"""What dvc.yaml cannot compute itself: the caches each of its foreach stages reads, per entry of params.yaml.

`vemo graph` writes them into `stage_graph.yaml` (a dvc.yaml `vars` file): per extractor of `features:`
its sources (`graph.sources_of`), per entry of `heads:` the caches its head declares with its options
(`heads.head_caches`).
"""

from __future__ import annotations

from typing import Any

import yaml

from pipeline.graph import sources_of
from pipeline.heads import head_caches
from pipeline.training.config import head_options

SHOWN_KEY = "written_by"
"""stage_graph.yaml's one key that is a DVC param (of `manifest`, dvc.yaml): `dvc exp show` then lists this
key alone instead of one column per list item it would list for a plain `vars` file (docs/dvc.md)."""

SLOTS = {"sources": 2, "caches": 2}
"""How many `${item.<field>[i]}` dependencies dvc.yaml's foreach stages list (tests/test_graph.py checks)."""


def _slots(lists: dict[str, tuple[str, ...]], field: str) -> dict[str, dict[str, list[str]]]:
    """Each list padded to dvc.yaml's number of slots by repeating its last name: a DVC foreach stage lists
    a fixed number of dependencies, and a file listed twice is one dependency."""
    width = SLOTS[field]
    longer = {k: v for k, v in lists.items() if len(v) > width}
    if longer:
        raise ValueError(f"{sorted(longer)} read more than the {width} caches dvc.yaml's stages list: add "
                         f"`${{item.{field}[{width}]}}` lines to dvc.yaml and raise SLOTS in {__name__}")
    return {k: {field: [*v, *[v[-1]] * (width - len(v))]} for k, v in lists.items()}


def stage_graph(params: dict[str, Any]) -> dict[str, Any]:
    """What dvc.yaml's foreach stages iterate over: per extractor of `features:` the caches it reads
    (`sources`), per entry of `heads:` the caches the head reads (`caches`)."""
    sources = {name: sources_of(name) for name in params.get("features", {})}
    caches = {key: head_caches(entry["head"], head_options(params, key))
              for key, entry in params.get("heads", {}).items()}
    return {"feature_stages": _slots(sources, "sources"), "head_stages": _slots(caches, "caches"),
            SHOWN_KEY: "vemo graph"}


def stage_graph_text(params: dict[str, Any]) -> str:
    header = ("# Written by `vemo graph` from params.yaml (`features:`, `heads:`) and pipeline/graph.py; do\n"
              "# not edit. dvc.yaml's feat@, train@, evaluate@ and report@ stages take their deps from it.\n")
    return header + yaml.safe_dump(stage_graph(params), sort_keys=True, default_flow_style=None, width=110)
