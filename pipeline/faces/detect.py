"""Detect faces with MTCNN and keep one face per frame.

facenet-pytorch's MTCNN ships its P/R/O-net weights inside the package, so detection works offline; its
algorithm runs in `mtcnn.BatchedMTCNN` (facenet's boxes up to float noise, in less time: bench/README.md).
Per frame it returns every candidate; we drop those under `min_prob` or smaller than `min_size`
pixels (shorter box side), then keep one by the stated policy:

- "largest": the biggest box (the main character in a film shot; CAAN crops one face per frame),
- "confident": the most probable box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.faces.config import FaceConfig

if TYPE_CHECKING:
    from pipeline.faces.mtcnn import BatchedMTCNN, Detections

MTCNN_MIN_SIDE = 12                # pixels: the P-net's window; smaller frames have no pyramid scale


@dataclass
class FrameFaces:
    """One detection per frame (NaN where none): boxes (F, 4) x1 y1 x2 y2, probs (F,), landmarks (F, 5, 2),
    and the number of candidates that passed the filters, (F,)."""

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray
    candidates: np.ndarray

    @property
    def has_face(self) -> np.ndarray:
        return ~np.isnan(self.probs)


def build_detector(cfg: FaceConfig) -> BatchedMTCNN:
    # imported here, in the workers: the stage's driver imports this module but never needs torch (2-3 s)
    from pipeline.faces.mtcnn import BatchedMTCNN

    return BatchedMTCNN(min_face_size=cfg.min_size)


def _choose(boxes: np.ndarray, probs: np.ndarray, cfg: FaceConfig) -> tuple[int | None, int]:
    sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    keep = np.flatnonzero((probs >= cfg.min_prob) & (sides >= cfg.min_size))
    if keep.size == 0:
        return None, 0
    score = (boxes[keep, 2] - boxes[keep, 0]) * (boxes[keep, 3] - boxes[keep, 1]) \
        if cfg.select == "largest" else probs[keep]
    return int(keep[np.argmax(score)]), int(keep.size)


def detect_faces(detector: BatchedMTCNN, frames: np.ndarray, cfg: FaceConfig) -> FrameFaces:
    """frames: (F, H, W, 3) uint8 of one video (one size), detected in batches of `cfg.batch_size`."""
    n = len(frames)
    out = FrameFaces(np.full((n, 4), np.nan, np.float32), np.full(n, np.nan, np.float32),
                     np.full((n, 5, 2), np.nan, np.float32), np.zeros(n, np.int32))
    if n == 0 or min(frames.shape[1:3]) < max(MTCNN_MIN_SIDE, cfg.min_size, detector.min_face_size):
        return out  # no face of min_size fits (and MTCNN fails on frames below its first scale)
    for start in range(0, n, cfg.batch_size):
        found: list[Detections] = detector.detect(frames[start:start + cfg.batch_size])
        for j, d in enumerate(found):
            best, count = _choose(d.boxes, d.probs, cfg)
            out.candidates[start + j] = count
            if best is not None:
                out.boxes[start + j], out.probs[start + j] = d.boxes[best], d.probs[best]
                out.landmarks[start + j] = d.landmarks[best]
    return out
