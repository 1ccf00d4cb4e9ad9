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
from pipeline.registry import Registry


class ManifestError(ValueError):
    """The dataset or its lists cannot make a valid manifest; the message names the file and the line."""


@dataclass
class BuildResult:
    manifest: Manifest
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


Builder = Callable[..., BuildResult]
# An unknown builder is a ManifestError: the manifest stage reports those as a bad dataset section.
BUILDERS: Registry[Builder] = Registry("dataset builder", missing=ManifestError)


def register_builder(name: str) -> Callable[[Builder], Builder]:
    """Decorator adding a builder under ``name``; a second, different builder under one name raises."""
    return BUILDERS.register(name)


def list_builders() -> list[str]:
    return BUILDERS.names()


def get_builder(name: str) -> Builder:
    return BUILDERS.get(name)


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
