"""MTCNN as facenet-pytorch 2.5.3 runs it (`detect_face`: same weights, pyramid, thresholds, NMS steps),
with what costs time on one CPU thread done differently:

- "area" resampling (the pyramid and the R-/O-net crops) from one integer summed-area table per frame:
  facenet calls `interpolate(mode="area")` once per scale and once per candidate box (thousands per
  video at 640 px); a bin's sum read off the table is exact (integers), then scaled by one factor that
  also holds facenet's (x - 127.5) / 128, so a pixel differs from facenet's in its last bit at most;
- the three nets in channels-last memory layout (oneDNN's faster convolution and max-pool kernels for
  few channels): values differ from facenet's in the last float bits only.

The steps between the nets are facenet's own functions (box generation, regression, squaring, padding,
the final "Min" NMS), so boxes, probabilities and landmarks are facenet's up to float noise
(tests/test_faces_mtcnn.py holds them against `facenet_pytorch.MTCNN.detect` on real faces).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

THRESHOLDS = (0.6, 0.7, 0.7)      # facenet's defaults for the P-, R- and O-net
FACTOR = 0.709                    # pyramid step
PNET_WINDOW = 12
PNET_PIXELS = 4 * 217 * 385       # P-net input pixels per call (4 frames of 640 x 360 at the first scale)


@dataclass
class Detections:
    """One frame's faces, largest first (facenet's order with select_largest): boxes (n, 4) x1 y1 x2 y2,
    probs (n,), landmarks (n, 5, 2)."""

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float = FACTOR) -> list[float]:
    """facenet's scale pyramid: from 12 / min_face_size down while the shorter side stays >= 12 px."""
    scale = PNET_WINDOW / min_face_size
    shorter = min(height, width) * scale
    scales = []
    while shorter >= PNET_WINDOW:
        scales.append(scale)
        scale *= factor
        shorter *= factor
    return scales


def summed_area(frames: np.ndarray) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H + 1, W + 1) integer table: [y, x] = sum of rows < y, columns < x."""
    b, h, w, c = frames.shape
    dtype = np.int32 if 255 * h * w < 2**31 else np.int64
    table = np.zeros((b, c, h + 1, w + 1), dtype)
    inner = table[:, :, 1:, 1:]
    np.cumsum(frames.transpose(0, 3, 1, 2), axis=2, dtype=dtype, out=inner)   # numpy's: faster than torch's
    np.cumsum(inner, axis=3, out=inner)
    return torch.from_numpy(table)


def _bins(start: torch.Tensor, length: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """adaptive_avg_pool2d's bins of `size` over [start, start + length): (first, stop), each (..., size)."""
    i = torch.arange(size)
    length = length[..., None]
    first = (i * length).div(size, rounding_mode="floor")
    stop = ((i + 1) * length + size - 1).div(size, rounding_mode="floor")
    return start[..., None] + first, start[..., None] + stop


def _scaled(sums: torch.Tensor, bin_area: torch.Tensor, gain: float, offset: float) -> torch.Tensor:
    """offset + gain x sums / bin_area: (..., 3) integers -> contiguous float32, in two passes."""
    out = torch.empty(sums.shape)
    torch.mul(sums, (gain / bin_area.double()).float(), out=out)
    return out.add_(offset)


def resample_area(table: torch.Tensor, size: tuple[int, int], gain: float = 1.0,
                  offset: float = 0.0) -> torch.Tensor:
    """Whole frames (B, 3, H + 1, W + 1) table -> (B, 3, *size) float32, channels last:
    offset + gain x interpolate(frames, size, mode="area"), up to float rounding."""
    h, w = table.shape[2] - 1, table.shape[3] - 1
    y0, y1 = _bins(torch.tensor(0), torch.tensor(h), size[0])
    x0, x1 = _bins(torch.tensor(0), torch.tensor(w), size[1])
    rows = table.index_select(2, y1) - table.index_select(2, y0)       # sums over each row bin
    # columns picked as rows of the transposed sums: index_select on the last dimension is ~10x slower
    rows = rows.transpose(2, 3).contiguous()
    sums = (rows.index_select(2, x1) - rows.index_select(2, x0)).permute(0, 3, 2, 1)   # (B, h, w, 3) view
    area = ((y1 - y0)[:, None] * (x1 - x0)[None, :])[:, :, None]
    return _scaled(sums, area, gain, offset).permute(0, 3, 1, 2)


def crop_area(table: torch.Tensor, frame: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
              size: int, gain: float = 1.0, offset: float = 0.0) -> torch.Tensor:
    """Boxes [rows[:, 0], rows[:, 1]) x [cols[:, 0], cols[:, 1]) of frames `frame` -> (N, 3, size, size)
    float32, channels last: offset + gain x interpolate(crop, (size, size), mode="area"), up to rounding."""
    y0, y1 = _bins(rows[:, 0], rows[:, 1] - rows[:, 0], size)
    x0, x1 = _bins(cols[:, 0], cols[:, 1] - cols[:, 0], size)
    t = table.permute(0, 2, 3, 1)                          # (B, H + 1, W + 1, 3): one gather per corner
    f = frame[:, None, None]

    def corner(ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        return t[f, ys[:, :, None], xs[:, None, :]]

    sums = corner(y1, x1) - corner(y0, x1) - corner(y1, x0) + corner(y0, x0)     # (N, size, size, 3)
    area = ((y1 - y0)[:, :, None] * (x1 - x0)[:, None, :])[..., None]
    return _scaled(sums, area, gain, offset).permute(0, 3, 1, 2)


# facenet's input scaling, (x - 127.5) / 128, applied with the resampling
GAIN, OFFSET = 0.0078125, -127.5 * 0.0078125


def _facenet():
    """facenet-pytorch's detect_face module (box generation, regression, squaring, padding, NMS) and
    torchvision's batched NMS; imported on first use, in the workers: torchvision takes 3 s to import and
    the faces stage's driver never needs it."""
    from facenet_pytorch.models.utils import detect_face
    from torchvision.ops.boxes import batched_nms

    return detect_face, batched_nms


class BatchedMTCNN:
    """facenet-pytorch's MTCNN weights and algorithm (keep_all, select_largest), on the CPU."""

    def __init__(self, min_face_size: float = 20, thresholds: tuple[float, float, float] = THRESHOLDS,
                 factor: float = FACTOR) -> None:
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.min_face_size = min_face_size
        self.thresholds = thresholds
        self.factor = factor
        self.pnet, self.rnet, self.onet = (
            net.eval().to(memory_format=torch.channels_last) for net in (PNet(), RNet(), ONet()))

    @torch.no_grad()
    def detect(self, frames: np.ndarray) -> list[Detections]:
        """(B, H, W, 3) uint8 frames of one size -> each frame's faces."""
        ops, batched_nms = _facenet()
        n, h, w = frames.shape[:3]
        table = summed_area(frames)
        boxes, frame = self._pnet_stage(table, h, w)
        points = torch.zeros(0, 5, 2)
        if len(boxes):
            boxes, frame, reg, _ = self._refine(table, boxes, frame, self.rnet, 24, self.thresholds[1])
            pick = batched_nms(boxes[:, :4], boxes[:, 4], frame, 0.7)
            boxes, frame = ops.rerec(ops.bbreg(boxes[pick], reg[pick])), frame[pick]
        if len(boxes):
            boxes, frame, reg, marks = self._refine(table, boxes, frame, self.onet, 48, self.thresholds[2])
            side_w, side_h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
            points = torch.stack((side_w[:, None] * marks[:, :5] + boxes[:, 0:1] - 1,
                                  side_h[:, None] * marks[:, 5:] + boxes[:, 1:2] - 1), dim=2)
            boxes = ops.bbreg(boxes, reg)
            pick = ops.batched_nms_numpy(boxes[:, :4], boxes[:, 4], frame, 0.7, "Min")
            boxes, frame, points = boxes[pick], frame[pick], points[pick]
        return self._per_frame(boxes.numpy(), points.numpy(), frame.numpy(), n)

    def _pnet_stage(self, table: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidates of every scale, NMS within each scale and frame (0.5), then within each frame (0.7),
        regressed and squared: (M, 5) boxes with score, (M,) frame index."""
        ops, batched_nms = _facenet()
        boxes, frames = [], []
        for scale in pyramid_scales(h, w, self.min_face_size, self.factor):
            image = resample_area(table, (int(h * scale + 1), int(w * scale + 1)), GAIN, OFFSET)
            # a few frames per call: the activations of 16 frames at 640 px leave the CPU's caches
            step = max(1, PNET_PIXELS // (image.shape[2] * image.shape[3]))
            outs = [self.pnet(image[i:i + step]) for i in range(0, len(image), step)]
            reg, probs = (torch.cat(o) for o in zip(*outs, strict=True))
            found, frame = ops.generateBoundingBox(reg, probs[:, 1], scale, self.thresholds[0])
            pick = batched_nms(found[:, :4], found[:, 4], frame, 0.5)
            boxes.append(found[pick])
            frames.append(frame[pick])
        found, frame = torch.cat(boxes), torch.cat(frames)
        pick = batched_nms(found[:, :4], found[:, 4], frame, 0.7)
        found, frame = found[pick], frame[pick]
        side_w, side_h = found[:, 2] - found[:, 0], found[:, 3] - found[:, 1]
        regressed = torch.stack([found[:, 0] + found[:, 5] * side_w, found[:, 1] + found[:, 6] * side_h,
                                 found[:, 2] + found[:, 7] * side_w, found[:, 3] + found[:, 8] * side_h,
                                 found[:, 4]], dim=1)
        return ops.rerec(regressed), frame

    def _refine(self, table: torch.Tensor, boxes: torch.Tensor, frame: torch.Tensor, net: nn.Module,
                size: int, threshold: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The R- or O-net on every box's area-resampled crop: the boxes over `threshold` with their new
        score, their frame index, box regression and landmark outputs (the R-net's: its score)."""
        ops, _ = _facenet()
        h, w = table.shape[2] - 1, table.shape[3] - 1
        y, ey, x, ex = (torch.from_numpy(v).long() for v in ops.pad(boxes, w, h))
        keep = (ey > y - 1) & (ex > x - 1)         # facenet skips empty crops
        if not keep.any():                         # (and the nets fail on an empty batch)
            return torch.zeros(0, 5), frame[:0], torch.zeros(0, 4), torch.zeros(0, 10)
        boxes, frame = boxes[keep], frame[keep]
        rows = torch.stack([y[keep] - 1, ey[keep]], dim=1)
        cols = torch.stack([x[keep] - 1, ex[keep]], dim=1)
        out = net(crop_area(table, frame, rows, cols, size, GAIN, OFFSET))
        score = out[-1][:, 1]
        passed = score > threshold
        boxes = torch.cat((boxes[passed, :4], score[passed, None]), dim=1)
        return boxes, frame[passed], out[0][passed], out[-2][passed]

    @staticmethod
    def _per_frame(boxes: np.ndarray, points: np.ndarray, frame: np.ndarray, n: int) -> list[Detections]:
        out = []
        for i in range(n):
            b, p = boxes[frame == i], points[frame == i]
            order = np.argsort((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[::-1]   # as facenet's detect
            out.append(Detections(b[order, :4], b[order, 4], p[order]))
        return out
