"""The worker functions a feature stage submits, importable without torch.

The driver names them in its tasks; a worker imports the network code (`worker`, torch) on the first
call. The driver itself never imports torch for a built-in extractor in fp32 (`catalog`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.engine.dask_map import Outcome, VideoTask
    from pipeline.features.config import ExtractorIdentity, ExtractorSpec


def extract_group(group: Sequence[VideoTask], **kwargs: Any) -> list[Outcome]:
    """`worker.extract_group`."""
    from pipeline.features import worker

    return worker.extract_group(group, **kwargs)


def worker_identity(spec: ExtractorSpec) -> ExtractorIdentity:
    """`worker.worker_identity`."""
    from pipeline.features import worker

    return worker.worker_identity(spec)
