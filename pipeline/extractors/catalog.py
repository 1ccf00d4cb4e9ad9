"""What a feature stage's driver knows of each built-in extractor without importing it (nor torch).

The driver needs an extractor's identity (its code version, its input kind and the weights it will
record) to know which videos its cache lacks before any worker starts, and its input kind to know what
to ship. Importing the extractor's class for that meant importing torch: 3 s of every feature stage's
3.5 s when nothing is left to do (bench/README.md, section 9). Each built-in's card says it here; the
class says it too, for the workers and for readers of the class, and `register_extractor` refuses a
class whose card disagrees, so the two cannot drift (an import error in every test, not a stale cache).
A plugin extractor has no card: the driver imports its class. This module imports nothing of the
library, so that the stage graph and the feature driver can read it without the package's torch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path

from pipeline.file_memo import sha256_of


@dataclass(frozen=True)
class Card:
    input_kind: str           # what it reads (pipeline/graph.py, INPUT_SOURCES)
    version: int = 1          # its class's `version`: bump both with any change of its values
    weighted: bool = True     # False: no weights at all, recorded as "none" (MFCC)
    precision: bool = True    # takes a `precision` option (params.yaml's `precision` by default)


CARDS: dict[str, Card] = {
    "alexnet_fc7": Card("keyframes"),
    "alexnet_fc7_spec": Card("spectrograms"),
    "mfcc": Card("audio", weighted=False, precision=False),
    "mfcc_resnet18": Card("mfcc"),
    "mfcc_resnet50": Card("audio"),
    "r3d101_conv5": Card("snippets"),
    "vgg16_fc6": Card("frames"),
    "vggface_fc6": Card("face_crops"),
}


def recorded_weights(name: str, weights: str, *, weighted: bool = True) -> str:
    """What loading `weights` records: "none" for an extractor without weights, "random", or the
    checkpoint's sha256 (FileNotFoundError naming the file when it is missing)."""
    if not weighted:
        return "none"
    if weights == "random":
        return "random"
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{name}: weights file {path} not found (see `vemo weights --help`)")
    return sha256_of(path)


def takes_precision(cls: type) -> bool:
    return "precision" in inspect.signature(cls.__init__).parameters


def card_of_class(cls: type) -> Card:
    """The card an extractor class's attributes amount to."""
    return Card(cls.input_kind, cls.version, cls.recorded_weights("random") != "none", takes_precision(cls))


def card_of(name: str) -> Card:
    """A built-in's card, or the card of a plugin's class (importing its module, and torch)."""
    if name in CARDS:
        return CARDS[name]
    from pipeline.extractors.base import get_extractor

    return card_of_class(get_extractor(name))


def card_disagreement(cls: type) -> str | None:
    """Why a built-in extractor's class disagrees with its card, or None (also for a class without one)."""
    card = CARDS.get(getattr(cls, "name", ""))
    if card is None:
        return None
    found = card_of_class(cls)
    if found != card:
        return f"its class says {found}, pipeline/extractors/catalog.py says {card}"
    return None
