"""Frozen backbones behind one interface (`base.Extractor`), in a registry (`base.EXTRACTORS`).

Each built-in extractor is a lazy entry, from its card in `pipeline/features/catalog.py`:
`get_extractor(name)` imports its module on first use, so a stage's workers import only the backbone they
run. A new extractor is its own module (a class decorated with `register_extractor`) plus its card.
"""

from pipeline.extractors.base import EXTRACTORS, Extractor, get_extractor, list_extractors, register_extractor
from pipeline.features.catalog import CARDS

for _name, _card in CARDS.items():
    EXTRACTORS.lazy(_name, _card.module)

__all__ = ["EXTRACTORS", "Extractor", "get_extractor", "list_extractors", "register_extractor"]
