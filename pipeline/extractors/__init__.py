"""Frozen backbones behind one interface (`base.Extractor`); importing the package registers them all."""

from pipeline.extractors import alexnet, r3d, vgg  # noqa: F401  (importing registers each extractor)
from pipeline.extractors.base import Extractor, get_extractor, list_extractors, register_extractor

__all__ = ["Extractor", "get_extractor", "list_extractors", "register_extractor"]
