"""Keyframe choice by RGB histogram (LSTM fusion paper): per 1-second slice, the frame whose histogram
is nearest in Manhattan distance to the mean histogram of the slice."""

from __future__ import annotations

import numpy as np

BINS = 32


def rgb_histogram(frame: np.ndarray, stride: int = 4) -> np.ndarray:
    """(3 * BINS,) normalised per-channel histogram of an (H, W, 3) uint8 frame.

    Every `stride`-th pixel in each direction is counted: the histogram barely changes and the cost,
    paid on every decoded frame, drops by stride^2.
    """
    pixels = frame[::stride, ::stride].reshape(-1, 3) // (256 // BINS)
    counts = np.bincount((pixels + np.arange(3) * BINS).ravel(), minlength=3 * BINS)
    return counts / max(len(pixels), 1)


def nearest_to_mean(histograms: np.ndarray) -> int:
    """Index of the histogram nearest (L1) to the mean of `histograms` (n, bins)."""
    mean = histograms.mean(axis=0)
    return int(np.abs(histograms - mean).sum(axis=1).argmin())
