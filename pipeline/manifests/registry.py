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
from pathlib import Path
from typing import Any

from pipeline.manifests.result import BuildResult, ManifestError
from pipeline.registry import Registry

Builder = Callable[..., BuildResult]
# An unknown builder is a ManifestError: the manifest stage reports those as a bad dataset section.
BUILDERS: Registry[Builder] = Registry("dataset builder", missing=ManifestError)


# Each built-in builder's module, imported when the builder is first asked for: one line per builder.
BUILDERS.lazy("caer", "pipeline.manifests.folders")
BUILDERS.lazy("csv", "pipeline.manifests.csv_list")
BUILDERS.lazy("ek6", "pipeline.manifests.ucf")
BUILDERS.lazy("folder", "pipeline.manifests.folders")
BUILDERS.lazy("heiv", "pipeline.manifests.folders")
BUILDERS.lazy("mediaeval2015", "pipeline.manifests.mediaeval2015")
BUILDERS.lazy("ucf", "pipeline.manifests.ucf")
BUILDERS.lazy("ve8", "pipeline.manifests.ucf")


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
