"""Dataset manifests: the one format (``format``), the builders that make one from a dataset's published
layout (a registry: ``get_builder(name)``, ``list_builders()``), and the split protocols (``protocols``).

Importing the package registers every builder.
"""

from pipeline.manifests import csv_list, folders, mediaeval2015, ucf  # noqa: F401  (registers the builders)
from pipeline.manifests.registry import (
    BuildResult,
    ManifestError,
    get_builder,
    list_builders,
    register_builder,
    run_builder,
)

__all__ = ["BuildResult", "ManifestError", "get_builder", "list_builders", "register_builder", "run_builder"]
