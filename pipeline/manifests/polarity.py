"""Emotion class -> polarity (+1 positive, -1 negative, 0 neutral): the table behind VAANet's PCCE loss
(its grouping is explained in ``pipeline/heads/polarity.py``, which builds the tensor the loss uses).

Kept here, without torch, so that the manifest stage can name a dataset's classes that have no polarity
in seconds, before any video is decoded, instead of ``train@`` failing after the whole extraction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

POLARITY: dict[str, int] = {
    "anticipation": 1, "joy": 1, "surprise": 1, "trust": 1,
    "anger": -1, "disgust": -1, "fear": -1, "sadness": -1,
    "neutral": 0,
}
SYNONYMS: dict[str, str] = {
    "happy": "joy", "happiness": "joy", "surprised": "surprise",
    "angry": "anger", "disgusted": "disgust", "fearful": "fear", "sad": "sadness",
}
VALID = (-1, 0, 1)


def polarity_key(name: str) -> str:
    return name.strip().lower()


def known_polarity(name: str) -> int | None:
    """The table's polarity of `name` (case-insensitive, synonyms resolved), or None if it is not known."""
    key = polarity_key(name)
    return POLARITY.get(SYNONYMS.get(key, key))


def missing_polarity(classes: Sequence[str], overrides: Mapping[str, int] | None = None) -> list[str]:
    """The classes that have neither a table entry nor an override (case-insensitive), in order."""
    extra = {polarity_key(name) for name in (overrides or {})}
    return [c for c in classes if polarity_key(c) not in extra and known_polarity(c) is None]
