"""Registry of manifest builders: ``params.yaml`` picks one by name (``dataset.builder``).

A builder turns a dataset folder (and, for some, its split lists) into a :class:`BuildResult`::

    @register_builder("mydata")
    def build_mydata(root: Path, lists: Path | None = None, *, some_option: int = 1) -> BuildResult: ...

Listed videos whose file is absent (``missing``) and videos on disk that no list names (``unlisted``) are
reported, never fatal; both are left out of the manifest. Malformed inputs (a label outside the class
list, two videos with one id, an unreadable list line) raise :class:`ManifestError` naming the file.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.manifests.format import Manifest


class ManifestError(ValueError):
    """The dataset or its lists cannot make a valid manifest; the message names the file and the line."""


@dataclass
class BuildResult:
    manifest: Manifest
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


Builder = Callable[..., BuildResult]
_BUILDERS: dict[str, Builder] = {}


def _qualname(fn: Builder) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def register_builder(name: str) -> Callable[[Builder], Builder]:
    """Decorator adding a builder under ``name``; a second, different builder under one name raises."""

    def add(fn: Builder) -> Builder:
        old = _BUILDERS.get(name)
        if old is not None and _qualname(old) != _qualname(fn):
            raise ValueError(f"manifest builder {name!r} is already registered by {_qualname(old)}")
        _BUILDERS[name] = fn
        return fn

    return add


def list_builders() -> list[str]:
    return sorted(_BUILDERS)


def get_builder(name: str) -> Builder:
    if name not in _BUILDERS:
        raise ManifestError(f"unknown manifest builder {name!r}; choose one of {', '.join(list_builders())}")
    return _BUILDERS[name]


def run_builder(
    name: str, root: str | Path, lists: str | Path | None = None, options: dict[str, Any] | None = None
) -> BuildResult:
    """Call a builder by name, turning an unknown option into a clear error instead of a TypeError."""
    builder = get_builder(name)
    args = (Path(root), Path(lists) if lists else None)
    try:
        inspect.signature(builder).bind(*args, **(options or {}))
    except TypeError as e:
        raise ManifestError(f"builder {name!r}: bad options {sorted(options or {})}: {e}") from None
    return builder(*args, **(options or {}))
