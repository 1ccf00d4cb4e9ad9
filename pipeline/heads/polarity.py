"""Emotion class -> polarity (+1 positive, -1 negative, 0 neutral), the prior that VAANet's PCCE loss uses.

VAANet (Zhao et al., AAAI 2020) groups the eight VideoEmotion-8 classes by Plutchik's wheel:

    positive (+1)   anticipation, joy, surprise, trust
    negative (-1)   anger, disgust, fear, sadness
    neutral   (0)   neutral            (HEIV, CAER; a neutral class is never penalised by PCCE)

Ekman-6 uses the same names (joy and surprise positive, the other four negative), so one table serves both.
A few obvious synonyms used by other datasets (CAER's "Happy", "Sad") map to the same entries. A class that
is not in the table needs an entry in `overrides` (from params.yaml), or `polarity_for` raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

# The table lives with the manifests, torch-free, so that the manifest stage checks it in seconds.
from pipeline.manifests.polarity import POLARITY, SYNONYMS, VALID, known_polarity, polarity_key

__all__ = ["POLARITY", "SYNONYMS", "VALID", "known_polarity", "polarity_for"]


def polarity_for(classes: Sequence[str], overrides: Mapping[str, int] | None = None) -> torch.Tensor:
    """(C,) long polarity of each class name; `overrides` (name -> -1/0/+1) win over the table.

    Raises ValueError naming every class that has neither a table entry nor an override, and for an
    override value outside {-1, 0, 1}.
    """
    extra = {polarity_key(name): int(value) for name, value in (overrides or {}).items()}
    bad = {name: value for name, value in extra.items() if value not in VALID}
    if bad:
        raise ValueError(f"polarity overrides must be -1, 0 or 1; got {bad}")
    values = [extra.get(polarity_key(name), known_polarity(name)) for name in classes]
    unknown = [name for name, value in zip(classes, values, strict=True) if value is None]
    if unknown:
        raise ValueError(f"no known polarity for classes {unknown}; give them in the polarity overrides "
                         f"(class name -> 1 positive, -1 negative, 0 neutral)")
    return torch.tensor(values, dtype=torch.long)
