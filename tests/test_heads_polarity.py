"""Class-name -> polarity maps used by the PCCE loss."""

from __future__ import annotations

import pytest
import torch

from pipeline.heads.polarity import polarity_for

VE8 = ["Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness", "Surprise", "Trust"]
EKMAN6 = ["anger", "disgust", "fear", "joy", "sadness", "surprise"]


def test_ve8_polarity_exact() -> None:
    got = polarity_for(VE8)
    assert got.dtype == torch.long
    assert got.tolist() == [-1, 1, -1, -1, 1, -1, 1, 1]


def test_ekman6_polarity_exact() -> None:
    assert polarity_for(EKMAN6).tolist() == [-1, -1, -1, 1, -1, 1]


def test_neutral_is_zero_and_caer_synonyms() -> None:
    heiv = ["anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise"]
    caer = ["Anger", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"]
    assert polarity_for(heiv).tolist() == [-1, -1, -1, 1, 0, -1, 1]
    assert polarity_for(caer).tolist() == [-1, -1, -1, 1, 0, -1, 1]


def test_names_match_case_insensitively() -> None:
    assert polarity_for(["JOY", " Fear ", "NeUtRaL"]).tolist() == [1, -1, 0]


def test_unknown_classes_are_named() -> None:
    with pytest.raises(ValueError, match=r"contempt.*boredom|boredom.*contempt"):
        polarity_for(["joy", "contempt", "boredom"])


def test_overrides_fill_unknown_and_win_over_the_table() -> None:
    got = polarity_for(["joy", "Contempt", "surprise"], overrides={"contempt": -1, "SURPRISE": -1})
    assert got.tolist() == [1, -1, -1]


def test_override_value_must_be_a_polarity() -> None:
    with pytest.raises(ValueError, match="contempt"):
        polarity_for(["contempt"], overrides={"contempt": 2})
