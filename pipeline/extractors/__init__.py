"""Frozen backbones behind one interface (`base.Extractor`); importing the package registers them all."""

from pipeline.extractors import alexnet, mfcc, mfcc_cnn, r3d, vgg  # noqa: F401  (registers each extractor)
from pipeline.extractors.base import Extractor, get_extractor, list_extractors, register_extractor

__all__ = ["Extractor", "get_extractor", "list_extractors", "register_extractor"]
