"""Pairing a head's saved maps with the time spans of the rows they weight.

A prediction record (`training.stage.prediction_records`) holds `attention` {map name: array} and `times_ms`
{input key: (rows, 2)}. A map belongs to the input whose rows it weights: the first input with as many rows
as the map's first axis, an input named like the map's modality ("audio" in both names) winning. So VAANet's
`temporal` goes with `visual` (T segments) and `audio_temporal` with `audio` (16 MFCC segments), TEN's
`temporal_audio` with `audio`, CAAN's `frame_scores` with its face frames, LSTM's `per_second` with its
seconds.
"""

from __future__ import annotations

from typing import Any

import numpy as np

POLARITY_WORDS = {1: "positive", -1: "negative", 0: "neutral"}


def input_of(name: str, length: int, times: dict[str, Any]) -> str | None:
    """The input key whose rows map `name` (first axis `length`) weights, or None."""
    fits = [k for k, t in times.items() if len(t) == length]
    same = [k for k in fits if ("audio" in k) == ("audio" in name)]
    return (same or fits or [None])[0]


def segments_of(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """{map name: [{start_ms, end_ms, value}, ...]} for every map with one value (or one vector) per row."""
    out = {}
    for name, values in record["attention"].items():
        array = np.asarray(values)
        key = input_of(name, len(array), record["times_ms"]) if array.ndim else None
        if key is None:
            continue
        out[name] = [{"start_ms": int(t[0]), "end_ms": int(t[1]), "value": v}
                     for t, v in zip(record["times_ms"][key], values, strict=True)]
    return out
