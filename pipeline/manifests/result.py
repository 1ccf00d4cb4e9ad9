"""What a dataset builder returns, and the error it raises for a dataset that cannot make a manifest."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.manifests.format import Manifest


class ManifestError(ValueError):
    """The dataset or its lists cannot make a valid manifest; the message names the file and the line."""


@dataclass
class BuildResult:
    manifest: Manifest
    missing: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # (path, reason) of entries named like videos that are no readable regular file (a FIFO, a dangling
    # link, a folder, an unreadable file): left out, like a bad video
    rejected: list[tuple[str, str]] = field(default_factory=list)
    # extension ("" for none) -> count of the dataset folder's other files (not hidden), never read: a
    # video format the scan does not know shows here instead of vanishing
    others: dict[str, int] = field(default_factory=dict)
