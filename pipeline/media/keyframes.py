"""Keyframe choice by RGB histogram (LSTM fusion paper): per 1-second slice, the frame whose histogram
is nearest in Manhattan distance to the mean histogram of the slice.

Every frame needs a histogram but only one frame a second is kept, so the histogram is taken on a small
copy (`HISTOGRAM_SIDE` square, nearest-neighbour: a grid of samples of the frame, as the earlier
every-4th-pixel sampling of a 256x256 copy was a grid of samples of that copy) and only the chosen frame
is scaled to the keyframe size. Scaling every frame to 256x256 cost as much as decoding it
(bench/README.md, issue 25).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BINS = 32
HISTOGRAM_SIDE = 32                 # 1,024 samples a frame: 2x2 px of every 20x11 px at 640x360 (64: +7% of
                                    # the decode time, 16: -4%; bench/README.md, issue 25)
HISTOGRAM_FLAGS = "neighbor"        # swscale's point sampling: a grid of the frame's own pixels
HELD_BYTES = 256 << 20              # decoded frames of the open slice kept unscaled, at most (SlicePicker)


def rgb_histogram(frame: np.ndarray) -> np.ndarray:
    """(3 * BINS,) normalised per-channel histogram of an (H, W, 3) uint8 frame."""
    pixels = frame.reshape(-1, 3) // (256 // BINS)
    counts = np.bincount((pixels + np.arange(3) * BINS).ravel(), minlength=3 * BINS)
    return counts / max(len(pixels), 1)


def nearest_to_mean(histograms: np.ndarray) -> int:
    """Index of the histogram nearest (L1) to the mean of `histograms` (n, bins)."""
    mean = histograms.mean(axis=0)
    return int(np.abs(histograms - mean).sum(axis=1).argmin())


class SlicePicker:
    """Sees every frame in order, as (index, small copy, frame, scale); keeps one keyframe per slice.

    Frame i belongs to slice floor(i / fps). `frame` is whatever the decoder hands out (a decoded picture
    or an array) and `scale(frame)` makes its keyframe image; it is called only for the chosen frame, once
    the slice is complete. The open slice's frames are held as they came while they fit in `held_bytes`
    (one second of 1080p30 takes 93 MB); beyond that a frame is scaled as it comes, which gives the same
    image, only sooner.
    """

    def __init__(self, fps: float, held_bytes: int = HELD_BYTES) -> None:
        self.fps, self.held_bytes = fps, held_bytes
        self.count = 0
        self.keyframes: list[tuple[int, np.ndarray]] = []
        self._slice = 0
        self._open: list[tuple[int, np.ndarray, Callable[[], np.ndarray]]] = []
        self._held = 0

    def add(self, i: int, small: np.ndarray, frame: Any, scale: Callable[[Any], np.ndarray],
            nbytes: int = 0) -> None:
        if int(i // self.fps) > self._slice and self._open:
            self._close()
        self._slice = int(i // self.fps)
        if self._held + nbytes > self.held_bytes:
            image = scale(frame)
            make = lambda: image  # noqa: E731
        else:
            make = lambda: scale(frame)  # noqa: E731
            self._held += nbytes
        self._open.append((i, rgb_histogram(small), make))
        self.count = i + 1

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """(frame index, keyframe image) per slice, the last partial slice included."""
        if self._open:
            self._close()
        return self.keyframes

    def _close(self) -> None:
        best = nearest_to_mean(np.stack([h for _, h, _ in self._open]))
        i, _, make = self._open[best]
        self.keyframes.append((i, make()))
        self._open, self._held = [], 0
