"""Frozen backbones behind one interface (`base.Extractor`), in a registry (`base.EXTRACTORS`).

Each built-in extractor is a lazy entry at the end of `base.py`, one line each: `get_extractor(name)`
imports its module on first use, so a stage's workers import only the backbone they run. A new extractor
is its own module (a class decorated with `register_extractor`), one line there and its card in
`catalog.py`. This package imports `base` (and torch) only when one of its names is asked for, so that
`catalog` reads without torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXTRACTORS", "Extractor", "get_extractor", "list_extractors", "register_extractor"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from pipeline.extractors import base

        return getattr(base, name)
    raise AttributeError(f"module 'pipeline.extractors' has no attribute {name!r}")
