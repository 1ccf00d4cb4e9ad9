"""Heads trained on cached tensors; importing this package registers every head."""

from pipeline.heads import caan, caan_baselines, lstm_fusion, ten, vaanet  # noqa: F401  (registration)
from pipeline.heads.base import (
    Head,
    InputSpec,
    build_head,
    head_accepts,
    head_caches,
    list_heads,
    register_head,
)

__all__ = ["Head", "InputSpec", "build_head", "head_accepts", "head_caches", "list_heads", "register_head"]
