"""Square face crops around detected boxes, padded with black where they leave the frame."""

from __future__ import annotations

import numpy as np

from pipeline.media.resize import resize


def square_box(box: np.ndarray, margin: float) -> tuple[int, int, int]:
    """(top, left, side) of the square centred on `box` (x1, y1, x2, y2), side (1 + margin) x longer side."""
    x1, y1, x2, y2 = (float(v) for v in box)
    side = max(1, round(max(x2 - x1, y2 - y1) * (1 + margin)))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return round(cy - side / 2), round(cx - side / 2), side


def crop_face(frame: np.ndarray, box: np.ndarray, *, margin: float, size: int) -> np.ndarray:
    """(H, W, 3) uint8 frame -> (size, size, 3) uint8 crop."""
    top, left, side = square_box(box, margin)
    h, w = frame.shape[:2]
    canvas = np.zeros((side, side, 3), np.uint8)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + side, h), min(left + side, w)
    if t1 > t0 and l1 > l0:
        canvas[t0 - top:t1 - top, l0 - left:l1 - left] = frame[t0:t1, l0:l1]
    return resize(canvas, size, size)
