"""No NaN or inf enters a cache without a word.

A backbone that overflows its precision (fp16 on a GPU, a checkpoint whose activations pass 65504 once
stored as float16), or an upstream value that is already NaN, would otherwise be cached as a valid entry:
one such row makes a head's feature statistics NaN, then every prediction, without a message. So every
entry's floating-point arrays are counted (`count_nonfinite`: on the worker when it compresses the entry,
pipeline/cache/packed.py, else in the writer) and the writer refuses an entry holding any (`refusal`):
the video fails in that stage with the reason, recorded like any failure, and the other videos go on.

The one exception is a stage's documented "none" marker: the faces cache fills a frame without a face with
NaN (`nan_rows`). There a row (first axis) wholly NaN is allowed; NaN beside numbers, or inf, is not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NonFinite:
    """The non-finite values of one array: NaN and +-inf counts of its `size`, and the rows (first axis)
    where NaN sits beside numbers."""

    nan: int
    inf: int
    size: int
    mixed_rows: int


def count_nonfinite(arrays: Mapping[str, np.ndarray]) -> dict[str, NonFinite]:
    """The floating-point arrays of an entry that hold NaN or inf (the others are left out)."""
    found = {}
    for name, value in arrays.items():
        array = np.asarray(value)
        if array.dtype.kind != "f" or array.size == 0:
            continue
        finite = np.isfinite(array)
        if finite.all():
            continue
        nan = np.isnan(array)
        rows = nan.reshape(len(array), -1) if array.ndim else nan.reshape(1, 1)
        found[name] = NonFinite(int(nan.sum()), int(array.size - finite.sum() - nan.sum()), int(array.size),
                                int((rows.any(axis=1) & ~rows.all(axis=1)).sum()))
    return found


def refusal(found: Mapping[str, NonFinite], nan_rows: Collection[str] = ()) -> str:
    """Why an entry with these non-finite values cannot be cached ("" when it can: only whole NaN rows of
    the arrays in `nan_rows`)."""
    bad = {name: f for name, f in found.items()
           if not (name in nan_rows and f.inf == 0 and f.mixed_rows == 0)}
    if not bad:
        return ""
    said = "; ".join(f"array {name!r} holds {f.nan} NaN and {f.inf} inf of its {f.size} values"
                     for name, f in sorted(bad.items()))
    return (f"{said}: not cached (a network overflowing its precision, fp16 above 65504, or a non-finite "
            "input upstream)")
