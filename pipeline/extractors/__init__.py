"""Frozen backbones behind one interface (`base.Extractor`); `get_extractor(name)` imports the module that
defines a built-in one on first use (`base.MODULES`), and `register_extractor` adds others."""

from pipeline.extractors.base import Extractor, get_extractor, list_extractors, register_extractor

__all__ = ["Extractor", "get_extractor", "list_extractors", "register_extractor"]
